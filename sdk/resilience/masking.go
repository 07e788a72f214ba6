package resilience

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaskConfig configures a Balancer's instance masking.
type MaskConfig struct {
	// An instance is ejected after EjectAfter consecutive failures
	// (default 3).
	EjectAfter int
	// It stays ejected for EjectFor (default 1s), doubled at each
	// ejection in a row up to MaxEjectFor (default 30s); then one probe
	// request is let through. A successful probe re-admits it.
	EjectFor, MaxEjectFor time.Duration
	// A re-admitted instance's weight ramps linearly from MinWeight
	// (default 0.05) to 1 over RampFor (default 30s).
	RampFor   time.Duration
	MinWeight float64
	// MaxEjected bounds the fraction of instances ejected at once
	// (default 0.5, at least one instance): masking never empties the pool.
	MaxEjected float64
	Name       string
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// DefaultMaskConfig returns the defaults above.
func DefaultMaskConfig(name string) MaskConfig {
	return MaskConfig{EjectAfter: 3, EjectFor: time.Second, MaxEjectFor: 30 * time.Second, RampFor: 30 * time.Second,
		MinWeight: 0.05, MaxEjected: 0.5, Name: name}
}

// ErrNoInstance is returned by Pick when the balancer has no instances.
var ErrNoInstance = errors.New("balancer: no instance")

type instance struct {
	addr        string
	consecutive int
	ejected     bool
	until       int64 // ejected: end of the ejection
	probing     bool  // ejected: the probe is in flight
	ejections   int   // ejections in a row (reset by a full ramp)
	admitted    int64 // when last re-admitted (0: never ejected)
	current     float64

	weight prometheus.Gauge
}

// Balancer picks instances by smooth weighted round robin and masks the
// failing ones: eject fast, re-admit by probing, ramp the weight slowly.
type Balancer struct {
	c   MaskConfig
	now func() time.Time

	mu    sync.Mutex
	insts []*instance
	// special counts the instances ejected or ramping: while it is 0,
	// Pick and Report need not read the clock.
	special int

	ejections *prometheus.CounterVec
}

// NewBalancer returns a Balancer over addrs. Its metrics:
// vigil_resilience_instance_weight{instance} (0 while ejected) and
// vigil_resilience_instance_ejections_total{instance}.
func NewBalancer(c MaskConfig, addrs ...string) (*Balancer, error) {
	d := DefaultMaskConfig(c.Name)
	if c.EjectAfter <= 0 {
		c.EjectAfter = d.EjectAfter
	}
	if c.EjectFor <= 0 {
		c.EjectFor = d.EjectFor
	}
	if c.MaxEjectFor < c.EjectFor {
		c.MaxEjectFor = max(d.MaxEjectFor, c.EjectFor)
	}
	if c.RampFor <= 0 {
		c.RampFor = d.RampFor
	}
	if c.MinWeight <= 0 || c.MinWeight > 1 {
		c.MinWeight = d.MinWeight
	}
	if c.MaxEjected <= 0 || c.MaxEjected > 1 {
		c.MaxEjected = d.MaxEjected
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("NewBalancer: %w given", ErrNoInstance)
	}
	in := newInstruments(c.Registerer, c.Name)
	weight := in.gauge("vigil_resilience_instance_weight", "Load-balancing weight of each instance: 0 while masked, ramping to 1 after re-admission.", "instance")
	b := &Balancer{c: c, now: nowFunc(c.Now),
		ejections: in.counter("vigil_resilience_instance_ejections_total", "Times an instance was masked for failing.", "instance")}
	for _, a := range addrs {
		b.insts = append(b.insts, &instance{addr: a, weight: weight.WithLabelValues(a)})
	}
	if in.err != nil {
		return nil, fmt.Errorf("MaskConfig.Registerer: cannot register the balancer %q: %w", c.Name, in.err)
	}
	for _, i := range b.insts {
		i.weight.Set(1)
	}
	return b, nil
}

// weightLocked is an admitted instance's weight at n; b.mu is held.
func (b *Balancer) weightLocked(i *instance, n int64) float64 {
	if i.admitted == 0 {
		return 1
	}
	f := float64(n-i.admitted) / float64(b.c.RampFor)
	if f >= 1 {
		i.admitted, i.ejections = 0, 0
		b.special--
		i.weight.Set(1)
		return 1
	}
	w := b.c.MinWeight + (1-b.c.MinWeight)*max(f, 0)
	i.weight.Set(w)
	return w
}

// Pick returns the instance for the next request, and whether the request
// is a probe of an ejected instance. Report its outcome with Report.
func (b *Balancer) Pick() (addr string, probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	if b.special > 0 {
		n = b.now().UnixNano()
		for _, i := range b.insts {
			if i.ejected && !i.probing && n >= i.until {
				i.probing = true
				return i.addr, true, nil
			}
		}
	}
	var best *instance
	total := 0.0
	for _, i := range b.insts {
		if i.ejected {
			continue
		}
		w := b.weightLocked(i, n)
		i.current += w
		total += w
		if best == nil || i.current > best.current {
			best = i
		}
	}
	if best == nil {
		return "", false, ErrNoInstance
	}
	best.current -= total
	return best.addr, false, nil
}

// Report records the outcome of a request Pick sent to addr.
func (b *Balancer) Report(addr string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var i *instance
	for _, x := range b.insts {
		if x.addr == addr {
			i = x
			break
		}
	}
	if i == nil {
		return
	}
	if i.ejected {
		if !i.probing {
			return // a late answer of a request sent before the ejection
		}
		i.probing = false
		n := b.now().UnixNano()
		if ok {
			i.ejected, i.consecutive, i.admitted, i.current = false, 0, n, 0
			b.weightLocked(i, n)
			return
		}
		b.ejectLocked(i, n)
		return
	}
	if ok {
		i.consecutive = 0
		return
	}
	i.consecutive++
	if i.consecutive >= b.c.EjectAfter && b.canEjectLocked() {
		b.ejectLocked(i, b.now().UnixNano())
	}
}

func (b *Balancer) canEjectLocked() bool {
	ejected := 0
	for _, i := range b.insts {
		if i.ejected {
			ejected++
		}
	}
	return ejected+1 <= max(1, int(b.c.MaxEjected*float64(len(b.insts)))) && ejected+1 < len(b.insts)
}

func (b *Balancer) ejectLocked(i *instance, n int64) {
	d := b.c.EjectFor
	for range i.ejections {
		if d >= b.c.MaxEjectFor {
			break
		}
		d *= 2
	}
	d = min(d, b.c.MaxEjectFor)
	i.ejections++
	if !i.ejected && i.admitted == 0 {
		b.special++
	}
	i.ejected, i.until, i.consecutive, i.current, i.admitted = true, n+int64(d), 0, 0, 0
	i.weight.Set(0)
	b.ejections.WithLabelValues(i.addr).Inc()
}
