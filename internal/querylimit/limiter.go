// Package querylimit bounds the query path: how many queries run at once
// (the rest wait in a short queue, and past it are refused with 429 and
// Retry-After), how many bytes one query may read from a store, how long a
// time range it may cover and how many entries it may return. It is what
// keeps a storm of heavy queries from starving ingestion or running the
// process out of memory.
//
// The admission limits are kept per key, a tenant id (Options.Key): each
// key has its share of the process' slots and a queue of its own.
package querylimit

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultKey is the admission key of a query without one: every query of
// a single-tenant Vigil.
const DefaultKey = "default"

// Options are the limits. A zero or negative value disables its limit.
type Options struct {
	// MaxConcurrent heavy queries run at once in all, at most
	// MaxConcurrentPerKey of them under one key (0: MaxConcurrent); past
	// them MaxQueued more per key wait, each at most QueueTimeout, for a
	// slot.
	MaxConcurrent       int
	MaxConcurrentPerKey int
	MaxQueued           int
	QueueTimeout        time.Duration
	// MaxBytesScanned bounds the bytes one query reads from a store.
	MaxBytesScanned int64
	// MaxRange bounds the time range of one query.
	MaxRange time.Duration
	// KeyMaxRange returns the range limit of one key (a tenant's
	// max_query_range), which replaces MaxRange for its queries; nil or 0
	// leaves MaxRange.
	KeyMaxRange func(key string) time.Duration

	// Key returns the admission key of a request (a tenant id); nil or
	// "" admits it under DefaultKey.
	Key func(*http.Request) string

	Registerer prometheus.Registerer
}

// DefaultOptions are limits that keep ingestion going under a storm of
// heavy queries: one heavy LogQL query keeps a core busy, so half the cores
// (at least one) run queries and the rest are left to ingestion
// (docs/BENCHMARKS.md, "Query storm").
func DefaultOptions() Options {
	return Options{
		MaxConcurrent:   max(1, runtime.NumCPU()/2),
		MaxQueued:       16,
		QueueTimeout:    5 * time.Second,
		MaxBytesScanned: 1 << 30,
		MaxRange:        31 * 24 * time.Hour,
	}
}

// Refusal reasons, the reason label of vigil_query_limit_refused_total.
const (
	ReasonQueueFull    = "queue_full"    // MaxConcurrent running and MaxQueued waiting
	ReasonQueueTimeout = "queue_timeout" // waited QueueTimeout without a slot
	ReasonBytesScanned = "bytes_scanned" // the query read more than MaxBytesScanned
	ReasonRange        = "range"         // the query's range exceeds MaxRange
)

// Limiter admits queries. Its methods are safe for concurrent use.
//
// Admission is fair between keys (tenants) and bounded for the process:
// at most MaxConcurrent heavy queries run in all, at most
// MaxConcurrentPerKey of them under one key, and each key has a queue of
// its own of MaxQueued. When a slot frees, it goes to the waiting key that
// runs the fewest queries (the longest waiting first among equals), so a
// storm under one key fills that key's queue and gets its 429s while
// another key's query takes the next free slot.
type Limiter struct {
	o      Options
	m      *metrics
	mu     sync.Mutex
	run    int              // heavy queries running, all keys; guarded by mu
	per    map[string]*pool // keys running or waiting; guarded by mu
	grants uint64           // slots given so far; guarded by mu
}

// pool is the running queries and the queue of one key, guarded by
// Limiter.mu.
type pool struct {
	running int
	waiting []*waiter
	granted uint64 // Limiter.grants when the key last got a slot
}

// waiter is one query in a key's queue. ready is closed when it is given
// a slot (granted, under Limiter.mu).
type waiter struct {
	ready   chan struct{}
	granted bool
}

// New returns a limiter enforcing o.
func New(o Options) *Limiter {
	return &Limiter{o: o, m: newMetrics(o.Registerer), per: map[string]*pool{}}
}

// Options returns the limits l enforces.
func (l *Limiter) Options() Options { return l.o }

// perKey is the slots one key may hold at once.
func (l *Limiter) perKey() int {
	if l.o.MaxConcurrentPerKey <= 0 || l.o.MaxConcurrentPerKey > l.o.MaxConcurrent {
		return l.o.MaxConcurrent
	}
	return l.o.MaxConcurrentPerKey
}

// RefusedError is a query turned away before it ran, because too many were
// running and waiting. RetryAfter is when the client should try again.
type RefusedError struct {
	Reason     string
	Key        string // the admission key (tenant)
	Limit      string // the flag that sets the limit, for the message
	Value      string
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string {
	who := ""
	if e.Key != "" && e.Key != DefaultKey {
		who = fmt.Sprintf("tenant %q: ", e.Key)
	}
	switch e.Reason {
	case ReasonQueueTimeout:
		return fmt.Sprintf("%stoo many concurrent queries: waited %s (--query.queue-timeout) for one of the %s slots; retry later", who, e.Value, e.Limit)
	default:
		return fmt.Sprintf("%stoo many concurrent queries: %s running and --query.max-queued=%s waiting; retry later", who, e.Limit, e.Value)
	}
}

// slotsText names the slots a key competes for, for a refusal's message.
func (l *Limiter) slotsText(p *pool) string {
	if l.perKey() < l.o.MaxConcurrent && p.running >= l.perKey() {
		return fmt.Sprintf("--query.max-concurrent-per-tenant=%d", l.perKey())
	}
	return fmt.Sprintf("--query.max-concurrent=%d", l.o.MaxConcurrent)
}

// Acquire waits for a slot to run one heavy query under key and returns
// the function that gives it back. Past key's queue it returns a
// *RefusedError; when ctx ends while it waits, ctx's error.
func (l *Limiter) Acquire(ctx context.Context, key string) (release func(), err error) {
	if l.o.MaxConcurrent <= 0 {
		l.m.admitted.Inc()
		l.m.inFlight.Inc()
		return l.m.inFlight.Dec, nil
	}
	l.mu.Lock()
	p := l.per[key]
	if p == nil {
		p = &pool{}
		l.per[key] = p
	}
	// A free slot and a key under its share: nobody can be waiting for it
	// (dispatch hands every slot it can to a waiter), so run at once.
	if l.run < l.o.MaxConcurrent && p.running < l.perKey() {
		l.grantLocked(p)
		l.mu.Unlock()
		return l.admit(key), nil
	}
	if len(p.waiting) >= max(l.o.MaxQueued, 0) {
		slots := l.slotsText(p)
		l.dropIdleLocked(key, p)
		l.mu.Unlock()
		l.m.refused.WithLabelValues(ReasonQueueFull).Inc()
		return nil, &RefusedError{Reason: ReasonQueueFull, Key: key, Limit: slots, Value: fmt.Sprint(l.o.MaxQueued), RetryAfter: l.retryAfter()}
	}
	w := &waiter{ready: make(chan struct{})}
	p.waiting = append(p.waiting, w)
	l.mu.Unlock()
	l.m.queued.Inc()
	l.m.waiting.Inc()
	defer l.m.waiting.Dec()

	var timeout <-chan time.Time
	if l.o.QueueTimeout > 0 {
		t := time.NewTimer(l.o.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ready:
		return l.admit(key), nil
	case <-timeout:
		granted, slots := l.leave(key, p, w)
		if granted {
			return l.admit(key), nil // granted as the timer fired
		}
		l.m.refused.WithLabelValues(ReasonQueueTimeout).Inc()
		return nil, &RefusedError{Reason: ReasonQueueTimeout, Key: key, Limit: slots, Value: l.o.QueueTimeout.String(), RetryAfter: l.retryAfter()}
	case <-ctx.Done():
		if granted, _ := l.leave(key, p, w); granted {
			l.admit(key)() // granted as the client went: give it on
		}
		l.m.abandoned.Inc()
		return nil, ctx.Err()
	}
}

// leave takes w out of p's queue and reports whether it had been granted
// a slot meanwhile (then it is w's to use or give back), and else the
// slots it waited for.
func (l *Limiter) leave(key string, p *pool, w *waiter) (granted bool, slots string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		return true, ""
	}
	slots = l.slotsText(p)
	for i, x := range p.waiting {
		if x == w {
			p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
			break
		}
	}
	l.dropIdleLocked(key, p)
	return false, slots
}

// grantLocked counts one more query running under p.
func (l *Limiter) grantLocked(p *pool) {
	l.run++
	p.running++
	l.grants++
	p.granted = l.grants
}

// dispatchLocked hands free slots to waiters: each to the waiting key
// under its share that runs the fewest queries and, among equals, was
// served least recently (round robin between keys).
func (l *Limiter) dispatchLocked() {
	for l.run < l.o.MaxConcurrent {
		var best *pool
		for _, p := range l.per {
			if len(p.waiting) == 0 || p.running >= l.perKey() {
				continue
			}
			if best == nil || p.running < best.running ||
				(p.running == best.running && p.granted < best.granted) {
				best = p
			}
		}
		if best == nil {
			return
		}
		w := best.waiting[0]
		best.waiting = best.waiting[1:]
		l.grantLocked(best)
		w.granted = true
		close(w.ready)
	}
}

// dropIdleLocked forgets a key that neither runs nor waits, so that the
// map holds only the keys at work.
func (l *Limiter) dropIdleLocked(key string, p *pool) {
	if p.running == 0 && len(p.waiting) == 0 {
		delete(l.per, key)
	}
}

func (l *Limiter) admit(key string) func() {
	l.m.admitted.Inc()
	l.m.inFlight.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			p := l.per[key]
			l.run--
			p.running--
			l.dropIdleLocked(key, p)
			l.dispatchLocked()
			l.mu.Unlock()
			l.m.inFlight.Dec()
		})
	}
}

// retryAfter is the delay a refused client is told to wait: the queue
// timeout, at least a second.
func (l *Limiter) retryAfter() time.Duration {
	return max(l.o.QueueTimeout.Round(time.Second), time.Second)
}

type metrics struct {
	admitted, queued, abandoned prometheus.Counter
	inFlight, waiting           prometheus.Gauge
	refused                     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "query_limit", Name: name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "query_limit", Name: name, Help: help})
	}
	m := &metrics{
		admitted:  c("admitted_total", "Heavy queries admitted to run (at once or after waiting in the queue)."),
		queued:    c("queued_total", "Heavy queries that had to wait in the queue for a slot."),
		abandoned: c("abandoned_total", "Heavy queries whose client went away while they waited in the queue."),
		inFlight:  g("in_flight", "Heavy queries running now."),
		waiting:   g("queued", "Heavy queries waiting in the queue now."),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "query_limit", Name: "refused_total",
			Help: "Queries refused by a query limit, by reason: queue_full, queue_timeout (429); bytes_scanned (422); range (400)."}, []string{"reason"}),
	}
	for _, r := range []string{ReasonQueueFull, ReasonQueueTimeout, ReasonBytesScanned, ReasonRange} {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.admitted, m.queued, m.abandoned, m.inFlight, m.waiting, m.refused)
	}
	return m
}
