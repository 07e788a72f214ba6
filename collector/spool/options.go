package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// Defaults for Options.
const (
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
)

// Options configure a spool. Where it keeps its batches, and how many, is
// the log's to say (Open): a disk queue directory whose MaxBytes bounds
// the bytes spooled and not yet forwarded, record framing and the
// enqueue-time prefix included.
type Options struct {
	// RetryMin and RetryMax bound the backoff between attempts to forward a
	// batch the downstream refused. Zero means DefaultRetryMin and
	// DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Breaker is the circuit breaker in front of the downstream, and
	// RetryWindow the adaptive retry window that grants its retries
	// (sdk/resilience); zero fields take resilience's defaults, an
	// empty Name "collector_spool" and a nil Registerer the spool's. The
	// collector names them spool-<signal> on the daemon's registry, beside
	// the other resilience series of Vigil's own calls.
	Breaker     resilience.BreakerConfig
	RetryWindow resilience.RetryWindowConfig
	// MaxCoalesce is how many spooled batches of one key may travel
	// downstream as one message (their OTLP encodings concatenated, which
	// is one valid export request); 1 forwards every batch on its own.
	// Zero means DefaultMaxCoalesce.
	MaxCoalesce int
	// Logger receives forwarding failures and recoveries; nil discards them.
	Logger *slog.Logger
	// Registerer, when not nil, receives the spool's metrics
	// (vigil_collector_spool_*); the log's own (vigil_queue_*) are the
	// log's.
	Registerer prometheus.Registerer
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		RetryMin:    DefaultRetryMin,
		RetryMax:    DefaultRetryMax,
		MaxCoalesce: DefaultMaxCoalesce,
	}
}

// resilienceName is the name label of the spool's breaker and retry
// window series.
const resilienceName = "collector_spool"

// DefaultMaxCoalesce is the default of Options.MaxCoalesce.
const DefaultMaxCoalesce = 64

// withDefaults fills in zero fields and reports every field that cannot be
// used.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	if o.RetryMin == 0 {
		o.RetryMin = d.RetryMin
	}
	if o.RetryMax == 0 {
		o.RetryMax = max(d.RetryMax, o.RetryMin)
	}
	if o.MaxCoalesce == 0 {
		o.MaxCoalesce = d.MaxCoalesce
	}
	if o.Breaker.Name == "" {
		o.Breaker.Name = resilienceName
	}
	if o.RetryWindow.Name == "" {
		o.RetryWindow.Name = resilienceName
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("spool options: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if o.MaxCoalesce < 0 {
		bad("MaxCoalesce", "%d; want 1 or more batches", o.MaxCoalesce)
	}
	if o.RetryMin < 0 {
		bad("RetryMin", "%v; want a positive duration", o.RetryMin)
	}
	if o.RetryMax < o.RetryMin {
		bad("RetryMax", "%v is shorter than RetryMin %v", o.RetryMax, o.RetryMin)
	}
	return o, errors.Join(errs...)
}
