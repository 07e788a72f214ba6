package resilience

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NextRetryWindow is one step of the adaptive retry window (DESIGN §5): f
// is the retry budget of the period that ended, g the retries actually
// made in it, t its total requests and s its success rate as a fraction
// (0.98 = 98 %). When s is in [0.98, 1] and the retries used the whole
// budget (g ≥ f), the budget grows by max(min(1 % of t, f), 1), 1 % of t
// rounded down; when s is in [0.98, 1] and g < f it is kept; on any worse
// (or undefined) success rate it is halved, never below 1. A budget below
// 1 is taken as 1.
func NextRetryWindow(f, g, t int, s float64) int {
	f = max(f, 1)
	if s >= 0.98 && s <= 1 {
		if g >= f {
			return f + max(min(t/100, f), 1)
		}
		return f
	}
	return max(1, f/2)
}

// RetryWindowConfig configures a RetryWindow.
type RetryWindowConfig struct {
	// Period is the detection period i (default 1s).
	Period time.Duration
	// Name is the constant label name on the window's series.
	Name       string
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// DefaultRetryWindowConfig returns a one-second detection period.
func DefaultRetryWindowConfig(name string) RetryWindowConfig {
	return RetryWindowConfig{Period: time.Second, Name: name}
}

// RetryWindow is the bookkeeping of the adaptive retry window: every
// attempt (first or retry) is Recorded, and a retry is made only when
// TryRetry grants it from the period's budget f. At the end of each period
// the budget moves by NextRetryWindow. One window serves all the calls to
// one peer, so that a failing peer gets about one retry per period, not
// one per call.
type RetryWindow struct {
	now    func() time.Time
	period int64

	mu        sync.Mutex
	end       int64 // end of the current period, Unix ns
	f, g      int
	total, ok int

	budget  prometheus.Gauge
	granted prometheus.Counter
	denied  prometheus.Counter
}

// NewRetryWindow returns a window with budget 1. Its metrics:
// vigil_resilience_retry_budget (f of the current period) and
// vigil_resilience_retries_total{decision="granted"|"denied"}.
func NewRetryWindow(c RetryWindowConfig) (*RetryWindow, error) {
	if c.Period <= 0 {
		c.Period = time.Second
	}
	in := newInstruments(c.Registerer, c.Name)
	retries := in.counter("vigil_resilience_retries_total", "Retries asked of the adaptive retry window, by decision: granted or denied (budget of the period used up).", "decision")
	w := &RetryWindow{
		now:     nowFunc(c.Now),
		period:  int64(c.Period),
		f:       1,
		budget:  in.gauge("vigil_resilience_retry_budget", "Retries the adaptive retry window allows in the current detection period, f(i).").WithLabelValues(),
		granted: retries.WithLabelValues("granted"),
		denied:  retries.WithLabelValues("denied"),
	}
	if in.err != nil {
		return nil, fmt.Errorf("RetryWindowConfig.Registerer: cannot register the retry window %q: %w", c.Name, in.err)
	}
	w.budget.Set(1)
	return w, nil
}

// roll closes the period when it has ended; w.mu is held. Idle periods in
// between had no requests and so kept the budget.
func (w *RetryWindow) roll(now int64) {
	if now < w.end {
		return
	}
	if w.end != 0 {
		s := 1.0
		if w.total > 0 {
			s = float64(w.ok) / float64(w.total)
		}
		w.f = NextRetryWindow(w.f, w.g, w.total, s)
		w.budget.Set(float64(w.f))
	}
	w.g, w.total, w.ok = 0, 0, 0
	w.end = now - now%w.period + w.period
}

// Record counts one attempt and whether it succeeded.
func (w *RetryWindow) Record(ok bool) {
	now := w.now().UnixNano()
	w.mu.Lock()
	w.roll(now)
	w.total++
	if ok {
		w.ok++
	}
	w.mu.Unlock()
}

// TryRetry reports whether one more retry fits in this period's budget,
// and takes it if so.
func (w *RetryWindow) TryRetry() bool {
	now := w.now().UnixNano()
	w.mu.Lock()
	w.roll(now)
	if w.g < w.f {
		w.g++
		w.mu.Unlock()
		w.granted.Inc()
		return true
	}
	w.mu.Unlock()
	w.denied.Inc()
	return false
}

// Budget returns the current period's budget f(i).
func (w *RetryWindow) Budget() int {
	now := w.now().UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.roll(now)
	return w.f
}
