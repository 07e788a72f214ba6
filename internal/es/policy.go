package es

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// WriteResilience is what a deployment may tune of the breaker and the
// dynamic timeout of a store's bulk requests; zero fields take the
// defaults.
type WriteResilience struct {
	// TimeoutFloor and TimeoutCeiling bound the dynamic timeout of one
	// bulk request (defaults DefaultTimeoutFloor, DefaultTimeoutCeiling).
	TimeoutFloor, TimeoutCeiling time.Duration
	// BreakerOpenFor is how long the breaker fails requests fast before
	// probing the cluster again (default DefaultBreakerOpenFor).
	BreakerOpenFor time.Duration
}

// PolicyOptions shape what a store applies to its bulk requests.
type PolicyOptions struct {
	WriteResilience
	// Name is the series' name label: es-logs, es-spans, es-dumps.
	Name string
	// MaxAttempts bounds the tries of one bulk request and of one item;
	// RetryBase and RetryMax shape the exponential backoff between them
	// (half jitter).
	MaxAttempts         int
	RetryBase, RetryMax time.Duration
	Registerer          prometheus.Registerer
}

// The dynamic timeout of a bulk request stays within these by default: a
// bulk of thousands of documents takes a few hundred milliseconds on a
// healthy cluster, and Elasticsearch's own bulk timeout is a minute.
const (
	DefaultTimeoutFloor   = 5 * time.Second
	DefaultTimeoutCeiling = time.Minute
	DefaultBreakerOpenFor = 5 * time.Second
)

// NewBulkPolicy returns the policy of one store's bulk requests: a
// circuit breaker, a dynamic timeout and an adaptive retry window, each
// registered on o.Registerer with the label name=o.Name. A cluster that
// fails five requests in a row opens the breaker: writes fail fast with
// resilience.ErrOpen, so that the ingester keeps its batch and backs off,
// until a probe succeeds.
func NewBulkPolicy(o PolicyOptions) (resilience.Policy, error) {
	if o.TimeoutFloor <= 0 {
		o.TimeoutFloor = DefaultTimeoutFloor
	}
	if o.TimeoutCeiling <= 0 {
		o.TimeoutCeiling = DefaultTimeoutCeiling
	}
	if o.TimeoutCeiling < o.TimeoutFloor {
		return resilience.Policy{}, fmt.Errorf("the Elasticsearch request timeout ceiling %v is below its floor %v", o.TimeoutCeiling, o.TimeoutFloor)
	}
	bc := resilience.DefaultBreakerConfig(o.Name)
	bc.Registerer = o.Registerer
	bc.OpenFor = DefaultBreakerOpenFor
	if o.BreakerOpenFor > 0 {
		bc.OpenFor = o.BreakerOpenFor
	}
	br, err := resilience.NewBreaker(bc)
	if err != nil {
		return resilience.Policy{}, err
	}
	to, err := resilience.NewDynamicTimeout(resilience.TimeoutConfig{Name: o.Name, Registerer: o.Registerer,
		Initial: o.TimeoutCeiling / 2, Floor: o.TimeoutFloor, Ceiling: o.TimeoutCeiling})
	if err != nil {
		return resilience.Policy{}, err
	}
	win, err := resilience.NewRetryWindow(resilience.RetryWindowConfig{Name: o.Name, Registerer: o.Registerer})
	if err != nil {
		return resilience.Policy{}, err
	}
	return resilience.Policy{Breaker: br, Timeout: to, Retry: &resilience.Retry{Window: win, MaxAttempts: max(o.MaxAttempts, 1),
		Backoff: resilience.Backoff{Base: o.RetryBase, Max: o.RetryMax, Jitter: 0.5}}}, nil
}

// NewBulkWriter returns a writer to c whose requests follow NewBulkPolicy(o).
func NewBulkWriter(c *Client, o PolicyOptions, m BulkMetrics) (*BulkWriter, error) {
	p, err := NewBulkPolicy(o)
	if err != nil {
		return nil, err
	}
	return &BulkWriter{Client: c, Policy: p, Metrics: m}, nil
}
