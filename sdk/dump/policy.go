package dump

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// policyName is the name label of the reporter's breaker and retry
// window series.
const policyName = "sdk_dumps"

// newPolicy returns the breaker in front of the intake and the adaptive
// retry window that grants retries, of bc and wc (resilience fills in
// their zero fields), registered on reg when it is not nil.
func newPolicy(bc resilience.BreakerConfig, wc resilience.RetryWindowConfig, reg *collectedRegisterer) (*resilience.Breaker, *resilience.RetryWindow, error) {
	bc.Name, wc.Name = policyName, policyName
	bc.Registerer, wc.Registerer = nil, nil
	if reg != nil {
		bc.Registerer, wc.Registerer = reg, reg
	}
	b, err := resilience.NewBreaker(bc)
	if err != nil {
		return nil, nil, err
	}
	w, err := resilience.NewRetryWindow(wc)
	if err != nil {
		return nil, nil, err
	}
	return b, w, nil
}

// collectedRegisterer registers on a registerer and remembers what, so
// that Close unregisters it all and a later New may register again.
type collectedRegisterer struct {
	prometheus.Registerer
	mu sync.Mutex
	cs []prometheus.Collector
}

func (r *collectedRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return nil
}

func (r *collectedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// unregisterAll unregisters what was registered; a nil r has nothing.
func (r *collectedRegisterer) unregisterAll() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cs {
		r.Registerer.Unregister(c)
	}
	r.cs = nil
}
