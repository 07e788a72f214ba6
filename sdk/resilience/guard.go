package resilience

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GuardConfig configures a Guard.
type GuardConfig struct {
	// MaxInflight is how many requests are served at once (default 64).
	MaxInflight int
	// MaxQueue bounds the requests waiting for a slot (default 4×MaxInflight).
	MaxQueue int
	// QueueBudget is the longest a request may have waited, counted from
	// its arrival, before it is rejected unserved (default 250ms).
	QueueBudget time.Duration
	// ShedAt is, by grade 1…4, the fraction of MaxQueue already waiting
	// at which a new request of that grade is shed (defaults 1, 0.9, 0.75,
	// 0.5: grade 4 first, grade 1 only when the queue is full).
	ShedAt     [4]float64
	Name       string
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// DefaultGuardConfig returns the defaults above.
func DefaultGuardConfig(name string) GuardConfig {
	return GuardConfig{MaxInflight: 64, QueueBudget: 250 * time.Millisecond, ShedAt: [4]float64{1, 0.9, 0.75, 0.5}, Name: name}
}

// Reasons a Guard rejects a request.
const (
	ReasonShed     = "shed"     // the queue is above the grade's share
	ReasonWaited   = "waited"   // queueing time over QueueBudget
	ReasonDeadline = "deadline" // the caller's deadline passed, or is nearer than the usual service time
)

// RejectError is a request the Guard turned away without serving it.
type RejectError struct {
	Reason string
	Grade  int
	Waited time.Duration
	Limit  string // the limit that was hit, for the caller's message
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("overloaded: grade %d request rejected (%s) after waiting %v: %s", e.Grade, e.Reason, e.Waited.Round(time.Microsecond), e.Limit)
}

// Guard is overload protection for a server: at most MaxInflight requests
// run, the others wait in priority lanes (grade 1 first), and a request is
// rejected as early as possible — on arrival when its grade's share of the
// queue is used up or its deadline cannot be met, and when it would
// leave the queue after QueueBudget or past its caller's deadline — so
// that the server spends its time only on answers that are still wanted.
//
// Acquire/Release is the blocking API; Enter/Leave/Expire is the same
// state machine driven by explicit times (simulations, tests).
type Guard struct {
	c   GuardConfig
	now func() time.Time

	mu       sync.Mutex
	inflight int
	queued   int
	lanes    [5]list.List // of *Waiter
	service  float64      // EMA of the service time, ns

	admitted  [5]prometheus.Counter // by grade
	rejected  *prometheus.CounterVec
	inflightG prometheus.Gauge
	queuedG   prometheus.Gauge
}

// Waiter is a request queued in a Guard.
type Waiter struct {
	grade    int
	arrived  int64
	deadline int64 // 0: none
	elem     *list.Element
	// Ready receives nil when the request is admitted, or its
	// *RejectError (buffered: the Guard never blocks on it).
	Ready chan error
}

// Grade returns the waiter's grade.
func (w *Waiter) Grade() int { return w.grade }

// NewGuard returns a Guard. Its metrics:
// vigil_resilience_guard_admitted_total{grade},
// vigil_resilience_guard_rejected_total{grade,reason},
// vigil_resilience_guard_inflight and vigil_resilience_guard_queued.
func NewGuard(c GuardConfig) (*Guard, error) {
	d := DefaultGuardConfig(c.Name)
	if c.MaxInflight <= 0 {
		c.MaxInflight = d.MaxInflight
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 4 * c.MaxInflight
	}
	if c.QueueBudget <= 0 {
		c.QueueBudget = d.QueueBudget
	}
	if c.ShedAt == [4]float64{} {
		c.ShedAt = d.ShedAt
	}
	in := newInstruments(c.Registerer, c.Name)
	g := &Guard{c: c, now: nowFunc(c.Now),
		rejected:  in.counter("vigil_resilience_guard_rejected_total", "Requests the overload guard rejected unserved, by grade and reason: shed, waited or deadline.", "grade", "reason"),
		inflightG: in.gauge("vigil_resilience_guard_inflight", "Requests being served behind the overload guard.").WithLabelValues(),
		queuedG:   in.gauge("vigil_resilience_guard_queued", "Requests waiting in the overload guard's priority lanes.").WithLabelValues(),
	}
	admitted := in.counter("vigil_resilience_guard_admitted_total", "Requests the overload guard let the server serve, by grade.", "grade")
	for gi := 1; gi <= 4; gi++ {
		g.admitted[gi] = admitted.WithLabelValues(gradeLabels[gi])
	}
	if in.err != nil {
		return nil, fmt.Errorf("GuardConfig.Registerer: cannot register the guard %q: %w", c.Name, in.err)
	}
	return g, nil
}

// Enter decides about a request of grade that arrived at arrived (≤ now)
// and must be answered by deadline (zero: none). It returns nil, nil when
// the request may run now (call Leave when it is done); a *RejectError
// when it is rejected; or a Waiter whose Ready channel will tell.
func (g *Guard) Enter(now, arrived, deadline time.Time, grade int) (*Waiter, error) {
	gi := gradeIndex(grade)
	w := Waiter{grade: gi, arrived: arrived.UnixNano()}
	if !deadline.IsZero() {
		w.deadline = deadline.UnixNano()
	}
	n := now.UnixNano()
	g.mu.Lock()
	if err := g.expired(&w, n); err != nil {
		g.mu.Unlock()
		g.rejected.WithLabelValues(gradeLabels[gi], err.Reason).Inc()
		return nil, err
	}
	if g.inflight < g.c.MaxInflight && g.queued == 0 {
		g.inflight++
		g.mu.Unlock()
		g.admitted[gi].Inc()
		g.inflightG.Inc()
		return nil, nil
	}
	if queued := g.queued; float64(queued) >= g.c.ShedAt[gi-1]*float64(g.c.MaxQueue) || queued >= g.c.MaxQueue {
		g.mu.Unlock()
		g.rejected.WithLabelValues(gradeLabels[gi], ReasonShed).Inc()
		return nil, &RejectError{Reason: ReasonShed, Grade: gi, Waited: time.Duration(n - w.arrived),
			Limit: fmt.Sprintf("%d requests queued, grade %d is shed from %.0f%% of the queue's %d", queued, gi, 100*g.c.ShedAt[gi-1], g.c.MaxQueue)}
	}
	wp := &Waiter{grade: gi, arrived: w.arrived, deadline: w.deadline, Ready: make(chan error, 1)}
	wp.elem = g.lanes[gi].PushBack(wp)
	g.queued++
	g.mu.Unlock()
	g.queuedG.Inc()
	return wp, nil
}

// expired returns why w may no longer be served at n; g.mu is held.
func (g *Guard) expired(w *Waiter, n int64) *RejectError {
	waited := time.Duration(n - w.arrived)
	if waited > g.c.QueueBudget {
		return &RejectError{Reason: ReasonWaited, Grade: w.grade, Waited: waited, Limit: fmt.Sprintf("queue budget %v", g.c.QueueBudget)}
	}
	if w.deadline != 0 && float64(w.deadline-n) < g.service {
		return &RejectError{Reason: ReasonDeadline, Grade: w.grade, Waited: waited,
			Limit: fmt.Sprintf("%v left before the caller's deadline, the usual service time is %v", time.Duration(w.deadline-n), time.Duration(g.service))}
	}
	return nil
}

// Leave ends a request admitted at started and hands its slot to the
// best waiter still worth serving; waiters found expired on the way are
// rejected. Their Ready channels are told.
func (g *Guard) Leave(now, started time.Time) { g.leave(now.UnixNano(), started.UnixNano(), true) }

// leave frees a slot; observe feeds the service time to the EMA.
func (g *Guard) leave(n, started int64, observe bool) {
	g.mu.Lock()
	if s := float64(n - started); observe && s >= 0 {
		if g.service == 0 {
			g.service = s
		} else {
			g.service += (s - g.service) / 8
		}
	}
	g.inflight--
	g.inflightG.Dec()
	for g.inflight < g.c.MaxInflight {
		w := g.popLocked()
		if w == nil {
			break
		}
		if err := g.expired(w, n); err != nil {
			g.rejected.WithLabelValues(gradeLabels[w.grade], err.Reason).Inc()
			w.Ready <- err
			continue
		}
		g.inflight++
		g.inflightG.Inc()
		g.admitted[w.grade].Inc()
		w.Ready <- nil
	}
	g.mu.Unlock()
}

func (g *Guard) popLocked() *Waiter {
	for gi := 1; gi <= 4; gi++ {
		if e := g.lanes[gi].Front(); e != nil {
			w := g.lanes[gi].Remove(e).(*Waiter)
			w.elem = nil
			g.queued--
			g.queuedG.Dec()
			return w
		}
	}
	return nil
}

// Expire rejects w at now if it is still queued (its caller gave up, or
// its budget ran out); it reports whether it did. A waiter already
// decided has its answer on Ready.
func (g *Guard) Expire(now time.Time, w *Waiter) bool {
	g.mu.Lock()
	if w.elem == nil {
		g.mu.Unlock()
		return false
	}
	g.lanes[w.grade].Remove(w.elem)
	w.elem = nil
	g.queued--
	g.queuedG.Dec()
	err := g.expired(w, now.UnixNano())
	if err == nil {
		err = &RejectError{Reason: ReasonDeadline, Grade: w.grade, Waited: time.Duration(now.UnixNano() - w.arrived), Limit: "the caller gave up"}
	}
	g.mu.Unlock()
	g.rejected.WithLabelValues(gradeLabels[w.grade], err.Reason).Inc()
	w.Ready <- err
	return true
}

// limit returns when w must leave the queue at the latest: its arrival
// plus QueueBudget, or its deadline when earlier.
func (g *Guard) limit(w *Waiter) time.Time {
	t := w.arrived + int64(g.c.QueueBudget)
	if w.deadline != 0 && w.deadline < t {
		t = w.deadline
	}
	return time.Unix(0, t)
}

// Acquire waits for a slot for a request of grade that arrived at arrived
// (the zero time: now), bounded by ctx's deadline. On success the caller
// serves the request and then calls Release with the returned start time.
func (g *Guard) Acquire(ctx context.Context, grade int, arrived time.Time) (time.Time, error) {
	now := g.now()
	if arrived.IsZero() || arrived.After(now) {
		arrived = now
	}
	dl, _ := ctx.Deadline()
	w, err := g.Enter(now, arrived, dl, grade)
	if err != nil {
		return time.Time{}, err
	}
	if w == nil {
		return now, nil
	}
	t := time.NewTimer(time.Until(g.limit(w)) + time.Millisecond)
	defer t.Stop()
	select {
	case err = <-w.Ready:
	case <-t.C:
		g.Expire(g.now(), w)
		err = <-w.Ready
	case <-ctx.Done():
		if !g.Expire(g.now(), w) {
			if err = <-w.Ready; err == nil {
				// admitted as its caller left: hand the slot on, unserved
				g.leave(g.now().UnixNano(), 0, false)
				return time.Time{}, ctx.Err()
			}
		} else {
			err = <-w.Ready
		}
	}
	if err != nil {
		return time.Time{}, err
	}
	return g.now(), nil
}

// Release ends a request Acquire admitted at started.
func (g *Guard) Release(started time.Time) { g.Leave(g.now(), started) }
