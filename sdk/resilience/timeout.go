package resilience

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TimeoutConfig configures a DynamicTimeout.
type TimeoutConfig struct {
	// Initial is the timeout before any latency was observed (default 1s).
	Initial time.Duration
	// Floor and Ceiling bound the timeout; Ceiling is the hard limit that
	// protects the caller's resources, elasticity included (defaults
	// 10ms and 10s).
	Floor, Ceiling time.Duration
	// Alpha and Beta are the EMA weights of a new sample in the latency
	// average and in its mean deviation (defaults 1/8 and 1/4, as TCP's
	// retransmission timer); K multiplies the deviation (default 4).
	Alpha, Beta, K float64
	Name           string
	Registerer     prometheus.Registerer
}

// DefaultTimeoutConfig returns the defaults above.
func DefaultTimeoutConfig(name string) TimeoutConfig {
	return TimeoutConfig{Initial: time.Second, Floor: 10 * time.Millisecond, Ceiling: 10 * time.Second,
		Alpha: 0.125, Beta: 0.25, K: 4, Name: name}
}

// DynamicTimeout derives a call's timeout from an exponential moving
// average of the latency and of its deviation: avg + K·dev, within
// [Floor, Ceiling]. It is elastic for short spikes: each call that timed
// out doubles an elasticity factor (the timeout grows up to Ceiling, so a
// short spike is waited out instead of failing every call), and each
// observed latency halves it back towards 1.
type DynamicTimeout struct {
	c TimeoutConfig

	mu      sync.Mutex
	avg     float64 // ns
	dev     float64 // ns
	seen    bool
	elastic float64

	gauge    prometheus.Gauge
	timeouts prometheus.Counter
}

// NewDynamicTimeout returns a DynamicTimeout. Its metrics:
// vigil_resilience_timeout_seconds (the current timeout) and
// vigil_resilience_timeouts_total.
func NewDynamicTimeout(c TimeoutConfig) (*DynamicTimeout, error) {
	d := DefaultTimeoutConfig(c.Name)
	if c.Initial <= 0 {
		c.Initial = d.Initial
	}
	if c.Floor <= 0 {
		c.Floor = d.Floor
	}
	if c.Ceiling <= 0 {
		c.Ceiling = d.Ceiling
	}
	if c.Ceiling < c.Floor {
		return nil, fmt.Errorf("TimeoutConfig.Ceiling %v is below TimeoutConfig.Floor %v", c.Ceiling, c.Floor)
	}
	if c.Alpha <= 0 || c.Alpha > 1 {
		c.Alpha = d.Alpha
	}
	if c.Beta <= 0 || c.Beta > 1 {
		c.Beta = d.Beta
	}
	if c.K <= 0 {
		c.K = d.K
	}
	in := newInstruments(c.Registerer, c.Name)
	t := &DynamicTimeout{c: c, elastic: 1,
		gauge:    in.gauge("vigil_resilience_timeout_seconds", "Current dynamic timeout: EMA of latency + K × its deviation, times the elasticity, within floor and ceiling.").WithLabelValues(),
		timeouts: in.counter("vigil_resilience_timeouts_total", "Calls that ran into the dynamic timeout.").WithLabelValues(),
	}
	if in.err != nil {
		return nil, fmt.Errorf("TimeoutConfig.Registerer: cannot register the dynamic timeout %q: %w", c.Name, in.err)
	}
	t.gauge.Set(t.Timeout().Seconds())
	return t, nil
}

// Timeout returns the timeout of the next call.
func (t *DynamicTimeout) Timeout() time.Duration {
	t.mu.Lock()
	d := t.timeoutLocked()
	t.mu.Unlock()
	return d
}

func (t *DynamicTimeout) timeoutLocked() time.Duration {
	base := float64(t.c.Initial)
	if t.seen {
		base = t.avg + t.c.K*t.dev
	}
	base = max(base, float64(t.c.Floor))
	return time.Duration(min(base*t.elastic, float64(t.c.Ceiling)))
}

// Observe feeds the latency of a call that completed in time.
func (t *DynamicTimeout) Observe(d time.Duration) {
	x := float64(d)
	t.mu.Lock()
	if !t.seen {
		t.avg, t.dev, t.seen = x, x/2, true
	} else {
		diff := x - t.avg
		if diff < 0 {
			diff = -diff
		}
		t.dev += t.c.Beta * (diff - t.dev)
		t.avg += t.c.Alpha * (x - t.avg)
	}
	t.elastic = max(1, t.elastic/2)
	v := t.timeoutLocked()
	t.mu.Unlock()
	t.gauge.Set(v.Seconds())
}

// ObserveTimeout records a call that ran into its timeout.
func (t *DynamicTimeout) ObserveTimeout() {
	t.mu.Lock()
	if t.timeoutLocked() < t.c.Ceiling {
		t.elastic *= 2
	}
	v := t.timeoutLocked()
	t.mu.Unlock()
	t.timeouts.Inc()
	t.gauge.Set(v.Seconds())
}
