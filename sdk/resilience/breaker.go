package resilience

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// State is a circuit breaker's state.
type State int

const (
	Closed   State = iota // calls pass, failures are counted
	Open                  // calls fail fast with ErrOpen
	HalfOpen              // a few probe calls pass to test the peer
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// ErrOpen is returned by Breaker.Allow while the breaker is open, or
// half-open with all its probes in flight.
var ErrOpen = errors.New("circuit breaker open: the peer failed recently, calls fail fast until a probe succeeds")

// BreakerConfig configures a Breaker.
type BreakerConfig struct {
	// Window is the closed state's counting period: failures and requests
	// are counted afresh each Window (default 10s).
	Window time.Duration
	// The breaker opens after ConsecutiveFailures failures in a row
	// (default 5), or when a window has at least MinRequests requests of
	// which FailureRatio or more failed (defaults 20 and 0.5).
	ConsecutiveFailures int
	MinRequests         int
	FailureRatio        float64
	// OpenFor is how long it stays open before probing (default 5s).
	OpenFor time.Duration
	// Probes is how many calls may probe at once when half-open, and how
	// many successes close it (default 3). A failed probe reopens it.
	Probes     int
	Name       string
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// DefaultBreakerConfig returns the defaults above.
func DefaultBreakerConfig(name string) BreakerConfig {
	return BreakerConfig{Window: 10 * time.Second, ConsecutiveFailures: 5, MinRequests: 20, FailureRatio: 0.5,
		OpenFor: 5 * time.Second, Probes: 3, Name: name}
}

// Ticket identifies the breaker generation a call was allowed in; a
// result reported for an older generation is ignored.
type Ticket uint64

// Breaker is a circuit breaker: Allow before a call, Done after it. The
// closed state's happy path takes no lock: atomics only.
type Breaker struct {
	c   BreakerConfig
	now func() time.Time

	state       atomic.Int32 // State
	gen         atomic.Uint64
	windowEnd   atomic.Int64 // Closed: end of the counting window (Unix ns)
	requests    atomic.Int64 // Closed: in the window
	failures    atomic.Int64 // Closed: in the window
	consecutive atomic.Int64 // Closed

	mu      sync.Mutex // transitions; Open and HalfOpen
	until   int64      // Open: end of the open period (Unix ns)
	probing int        // HalfOpen: probes in flight
	probeOK int        // HalfOpen: probes succeeded

	stateGauge  *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	rejected    prometheus.Counter
}

// NewBreaker returns a closed breaker. Its metrics:
// vigil_resilience_breaker_state{state} (1 for the current state),
// vigil_resilience_breaker_transitions_total{to} and
// vigil_resilience_breaker_rejected_total.
func NewBreaker(c BreakerConfig) (*Breaker, error) {
	d := DefaultBreakerConfig(c.Name)
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.ConsecutiveFailures <= 0 {
		c.ConsecutiveFailures = d.ConsecutiveFailures
	}
	if c.MinRequests <= 0 {
		c.MinRequests = d.MinRequests
	}
	if c.FailureRatio <= 0 || c.FailureRatio > 1 {
		c.FailureRatio = d.FailureRatio
	}
	if c.OpenFor <= 0 {
		c.OpenFor = d.OpenFor
	}
	if c.Probes <= 0 {
		c.Probes = d.Probes
	}
	in := newInstruments(c.Registerer, c.Name)
	b := &Breaker{c: c, now: nowFunc(c.Now),
		stateGauge:  in.gauge("vigil_resilience_breaker_state", "1 for the circuit breaker's current state (closed, open or half-open), 0 for the others.", "state"),
		transitions: in.counter("vigil_resilience_breaker_transitions_total", "Circuit breaker state changes, by the state entered.", "to"),
		rejected:    in.counter("vigil_resilience_breaker_rejected_total", "Calls the circuit breaker failed fast.").WithLabelValues(),
	}
	if in.err != nil {
		return nil, fmt.Errorf("BreakerConfig.Registerer: cannot register the circuit breaker %q: %w", c.Name, in.err)
	}
	for _, s := range []State{Closed, Open, HalfOpen} {
		b.stateGauge.WithLabelValues(s.String()).Set(0)
	}
	b.stateGauge.WithLabelValues(Closed.String()).Set(1)
	return b, nil
}

// State returns the current state (an open breaker whose period is over
// reports HalfOpen).
func (b *Breaker) State() State {
	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return State(b.state.Load())
}

// advance moves an open breaker whose period is over to half-open; b.mu
// is held.
func (b *Breaker) advance(now int64) {
	if State(b.state.Load()) == Open && now >= b.until {
		b.set(HalfOpen, now)
	}
}

// set enters state s; b.mu is held.
func (b *Breaker) set(s State, now int64) {
	b.stateGauge.WithLabelValues(State(b.state.Load()).String()).Set(0)
	b.gen.Add(1)
	b.requests.Store(0)
	b.failures.Store(0)
	b.consecutive.Store(0)
	b.probing, b.probeOK = 0, 0
	switch s {
	case Closed:
		b.windowEnd.Store(now + int64(b.c.Window))
	case Open:
		b.until = now + int64(b.c.OpenFor)
	}
	b.state.Store(int32(s)) // #nosec G115 -- one of three states
	b.stateGauge.WithLabelValues(s.String()).Set(1)
	b.transitions.WithLabelValues(s.String()).Inc()
}

// Allow reports whether a call may go ahead; when it may, the call's
// outcome must be reported with Done and the returned ticket.
func (b *Breaker) Allow() (Ticket, error) {
	g := b.gen.Load()
	if State(b.state.Load()) == Closed {
		return Ticket(g), nil
	}
	now := b.now().UnixNano()
	b.mu.Lock()
	b.advance(now)
	switch State(b.state.Load()) {
	case Open:
		b.mu.Unlock()
		b.rejected.Inc()
		return 0, ErrOpen
	case HalfOpen:
		if b.probing >= b.c.Probes-b.probeOK {
			b.mu.Unlock()
			b.rejected.Inc()
			return 0, ErrOpen
		}
		b.probing++
	}
	t := Ticket(b.gen.Load())
	b.mu.Unlock()
	return t, nil
}

// Done reports the outcome of a call Allow let through.
func (b *Breaker) Done(t Ticket, ok bool) {
	if uint64(t) != b.gen.Load() {
		return // the breaker changed state since: a stale outcome
	}
	now := b.now().UnixNano()
	if State(b.state.Load()) == Closed {
		if now >= b.windowEnd.Load() {
			b.mu.Lock()
			if uint64(t) == b.gen.Load() && now >= b.windowEnd.Load() {
				b.requests.Store(0)
				b.failures.Store(0)
				b.windowEnd.Store(now + int64(b.c.Window))
			}
			b.mu.Unlock()
		}
		req := b.requests.Add(1)
		if ok {
			if b.consecutive.Load() != 0 {
				b.consecutive.Store(0)
			}
			return
		}
		fail := b.failures.Add(1)
		if b.consecutive.Add(1) >= int64(b.c.ConsecutiveFailures) ||
			(req >= int64(b.c.MinRequests) && float64(fail) >= b.c.FailureRatio*float64(req)) {
			b.mu.Lock()
			if uint64(t) == b.gen.Load() {
				b.set(Open, now)
			}
			b.mu.Unlock()
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	if uint64(t) != b.gen.Load() || State(b.state.Load()) != HalfOpen {
		return
	}
	b.probing--
	if !ok {
		b.set(Open, now)
		return
	}
	b.probeOK++
	if b.probeOK >= b.c.Probes {
		b.set(Closed, now)
	}
}
