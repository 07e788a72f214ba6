package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// LanesConfig configures Lanes.
type LanesConfig struct {
	// Capacity bounds the items queued in all lanes together (default 1024).
	Capacity   int
	Name       string
	Registerer prometheus.Registerer
}

// Lanes is a bounded queue with one FIFO lane per grade: Pop always takes
// from the best (lowest) grade that has work, so grade-1 work never waits
// behind grade-4 work. When the queue is full, Push of an item evicts the
// newest item of the worst lane below its grade (returned to the caller,
// who must answer for it, e.g. with a 429); only when no lane below has
// any does Push fail.
type Lanes[T any] struct {
	capacity int

	mu    sync.Mutex
	lanes [5]ring[T] // by grade; lane 0 unused
	n     int
	ready chan struct{}

	depth   [5]prometheus.Gauge // by grade
	evicted [5]prometheus.Counter
}

// ErrQueueFull is wrapped by Lanes.Push when no lane of a worse grade has
// an item to evict.
var ErrQueueFull = errors.New("priority lanes full")

// NewLanes returns empty lanes. Its metrics:
// vigil_resilience_lane_depth{grade} and
// vigil_resilience_lane_evicted_total{grade}.
func NewLanes[T any](c LanesConfig) (*Lanes[T], error) {
	if c.Capacity <= 0 {
		c.Capacity = 1024
	}
	in := newInstruments(c.Registerer, c.Name)
	l := &Lanes[T]{capacity: c.Capacity, ready: make(chan struct{}, 1)}
	depth := in.gauge("vigil_resilience_lane_depth", "Items queued in the priority lane of each grade.", "grade")
	evicted := in.counter("vigil_resilience_lane_evicted_total", "Items evicted from a full priority queue by better-grade work, by their grade.", "grade")
	for g := 1; g <= 4; g++ {
		l.depth[g], l.evicted[g] = depth.WithLabelValues(gradeLabels[g]), evicted.WithLabelValues(gradeLabels[g])
	}
	if in.err != nil {
		return nil, fmt.Errorf("LanesConfig.Registerer: cannot register the lanes %q: %w", c.Name, in.err)
	}
	return l, nil
}

// Push queues v in the lane of grade (1…4; anything else is 4). When it
// evicted an item to make room, it returns it with evicted true.
func (l *Lanes[T]) Push(grade int, v T) (out T, evicted bool, err error) {
	g := gradeIndex(grade)
	l.mu.Lock()
	if l.n >= l.capacity {
		victim := 0
		for w := 4; w > g; w-- {
			if l.lanes[w].len() > 0 {
				victim = w
				break
			}
		}
		if victim == 0 {
			l.mu.Unlock()
			return out, false, fmt.Errorf("%w: %d items of grade %d or better queued (capacity %d)", ErrQueueFull, l.n, g, l.capacity)
		}
		out, evicted = l.lanes[victim].popBack(), true
		l.n--
		l.depth[victim].Dec()
		l.evicted[victim].Inc()
	}
	l.lanes[g].pushBack(v)
	l.n++
	l.mu.Unlock()
	l.depth[g].Inc()
	select {
	case l.ready <- struct{}{}:
	default:
	}
	return out, evicted, nil
}

// TryPop takes the oldest item of the best grade that has one.
func (l *Lanes[T]) TryPop() (v T, grade int, ok bool) {
	l.mu.Lock()
	for g := 1; g <= 4; g++ {
		if l.lanes[g].len() > 0 {
			v = l.lanes[g].popFront()
			l.n--
			more := l.n > 0
			l.mu.Unlock()
			l.depth[g].Dec()
			if more {
				select {
				case l.ready <- struct{}{}:
				default:
				}
			}
			return v, g, true
		}
	}
	l.mu.Unlock()
	return v, 0, false
}

// Pop is TryPop that waits for an item until ctx ends.
func (l *Lanes[T]) Pop(ctx context.Context) (T, int, error) {
	for {
		if v, g, ok := l.TryPop(); ok {
			return v, g, nil
		}
		select {
		case <-l.ready:
		case <-ctx.Done():
			var zero T
			return zero, 0, ctx.Err()
		}
	}
}

// Len returns the items queued in all lanes.
func (l *Lanes[T]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// ring is a growable FIFO that can also drop its newest item.
type ring[T any] struct {
	buf        []T
	head, size int
}

func (r *ring[T]) len() int { return r.size }

func (r *ring[T]) pushBack(v T) {
	if r.size == len(r.buf) {
		nb := make([]T, max(8, 2*len(r.buf)))
		for i := range r.size {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}

func (r *ring[T]) popFront() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return v
}

func (r *ring[T]) popBack() T {
	var zero T
	i := (r.head + r.size - 1) % len(r.buf)
	v := r.buf[i]
	r.buf[i] = zero
	r.size--
	return v
}
