package federation

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/vigilhq/vigil/internal/auth"
)

// Limits bound what clients may push (remote write, OTLP) and how many
// series the TSDB may hold, so that a client sending a new label value on
// every sample cannot grow the federation without bound. A zero field
// disables its limit.
type Limits struct {
	// MaxSeries bounds the active series of the TSDB's head (the series
	// written to in the last two to three hours), from every source:
	// pushes, scrapes, rules. MaxSeriesPerService bounds those of one
	// service: the value of the first of ServiceLabels a series has
	// (series with none of them share the service "").
	MaxSeries           int
	MaxSeriesPerService int
	ServiceLabels       []string
	// MaxPushBytes bounds a push's body as sent (compressed);
	// MaxPushDecodedBytes as decompressed. Prometheus' receivers refuse
	// bodies over 32 MiB themselves (400, naming no flag), so a larger
	// value acts as 32 MiB.
	MaxPushBytes        int64
	MaxPushDecodedBytes int64
	// MaxPushSamples bounds the samples (a float, a histogram, each
	// bucket of an OTLP histogram) of one push; a series has at least
	// one, so it bounds the series of a push too.
	MaxPushSamples int
	// MaxInflightPushes bounds the pushes decoded and appended at once;
	// one more waits up to PushQueueWait for a slot, then is refused
	// with 429.
	MaxInflightPushes int
	PushQueueWait     time.Duration
}

// DefaultLimits fit a fleet of a few hundred services on one federation:
// two million active series (Prometheus' head holds one in a few KiB, so
// several GiB of memory), a service with many replicas and histograms up to
// 200,000 of them, and pushes well above what Prometheus (2,000 samples a
// request) and the OpenTelemetry SDKs (a whole process's metrics every
// interval) send.
func DefaultLimits() Limits {
	return Limits{
		MaxSeries:           2_000_000,
		MaxSeriesPerService: 200_000,
		ServiceLabels:       []string{"service", "job"},
		MaxPushBytes:        16 << 20,
		MaxPushDecodedBytes: 32 << 20, // the receivers' own hard limit
		MaxPushSamples:      500_000,
		MaxInflightPushes:   32,
		PushQueueWait:       time.Second,
	}
}

// The limit names that answers, logs and vigil_federation_push_refused_*
// use.
const (
	limitMaxSeries           = "max-series"
	limitMaxSeriesPerService = "max-series-per-service"
	limitMaxPushBytes        = "max-push-bytes"
	limitMaxPushDecodedBytes = "max-push-decoded-bytes"
	limitMaxPushSamples      = "max-push-samples"
	limitMaxInflightPushes   = "max-inflight-pushes"
	// limitTenantMaxSeries is a tenant's max_series in --auth.config.
	limitTenantMaxSeries = "max_series"
)

// SeriesLimitError refuses a new series: the TSDB, or its service, holds
// as many active series as its limit allows. It is storage.ErrOutOfBounds
// to Prometheus' scrape loop and rule manager, which skip the series and
// keep the target's others.
type SeriesLimitError struct {
	Limit   string // max-series, max-series-per-service or max_series (a tenant's)
	Value   int
	Service string
	Tenant  string // of max_series
}

func (e *SeriesLimitError) Error() string {
	if e.Limit == limitTenantMaxSeries {
		return fmt.Sprintf("tenant %q has %d active series, its limit (max_series in --auth.config)", e.Tenant, e.Value)
	}
	if e.Limit == limitMaxSeriesPerService {
		return fmt.Sprintf("service %q has %d active series, the limit (--federation.limits.%s)", e.Service, e.Value, e.Limit)
	}
	return fmt.Sprintf("the TSDB has %d active series, the limit (--federation.limits.%s)", e.Value, e.Limit)
}

// Is makes the error storage.ErrOutOfBounds for Prometheus' libraries.
func (e *SeriesLimitError) Is(target error) bool { return target == storage.ErrOutOfBounds }

// seriesBudget counts the head's series by service through the TSDB's
// series lifecycle callbacks, and refuses the creation of one past a
// limit once enforcing (not while the write-ahead log is replayed: what
// was accepted before a restart stays). Counts may pass a limit by the
// series created concurrently with the last check.
type seriesBudget struct {
	max, perService int
	labels          []string
	enforcing       atomic.Bool
	refused         *prometheus.CounterVec // limit; nil: not counted

	// tenantMax is each tenant's bound (nil or 0: none); tenantRefused
	// counts its refusals by tenant; tenants learns of tenants' series.
	tenantMax     func(tenant string) int
	tenantRefused *prometheus.CounterVec
	tenants       *tenancy

	total    atomic.Int64
	mu       sync.Mutex
	by       map[string]int
	byTenant map[string]int
}

func newSeriesBudget(l Limits) *seriesBudget {
	return &seriesBudget{max: l.MaxSeries, perService: l.MaxSeriesPerService, labels: l.ServiceLabels,
		by: map[string]int{}, byTenant: map[string]int{}}
}

func (b *seriesBudget) service(ls labels.Labels) string {
	for _, n := range b.labels {
		if v := ls.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// PreCreation refuses a series past a limit.
func (b *seriesBudget) PreCreation(ls labels.Labels) error {
	if !b.enforcing.Load() {
		return nil
	}
	if b.max > 0 && b.total.Load() >= int64(b.max) {
		return b.refuse(&SeriesLimitError{Limit: limitMaxSeries, Value: b.max})
	}
	if b.perService > 0 {
		s := b.service(ls)
		b.mu.Lock()
		n := b.by[s]
		b.mu.Unlock()
		if n >= b.perService {
			return b.refuse(&SeriesLimitError{Limit: limitMaxSeriesPerService, Value: b.perService, Service: s})
		}
	}
	if b.tenantMax != nil {
		t := tenantOfSeries(ls)
		if m := b.tenantMax(t); m > 0 {
			b.mu.Lock()
			n := b.byTenant[t]
			b.mu.Unlock()
			if n >= m {
				if b.tenantRefused != nil {
					b.tenantRefused.WithLabelValues(t).Inc()
				}
				return b.refuse(&SeriesLimitError{Limit: limitTenantMaxSeries, Value: m, Tenant: t})
			}
		}
	}
	return nil
}

func (b *seriesBudget) refuse(e *SeriesLimitError) error {
	if b.refused != nil {
		b.refused.WithLabelValues(e.Limit).Inc()
	}
	return e
}

func (b *seriesBudget) PostCreation(ls labels.Labels) {
	b.total.Add(1)
	t := tenantOfSeries(ls)
	if t != auth.DefaultTenant && b.tenants != nil {
		b.tenants.seen.Store(true) // a series of the write-ahead log
	}
	if b.perService == 0 && b.tenantMax == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perService > 0 {
		b.by[b.service(ls)]++
	}
	if b.tenantMax != nil {
		b.byTenant[t]++
	}
}

func (b *seriesBudget) PostDeletion(deleted map[chunks.HeadSeriesRef]labels.Labels) {
	b.total.Add(-int64(len(deleted)))
	if b.perService == 0 && b.tenantMax == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ls := range deleted {
		if b.perService > 0 {
			s := b.service(ls)
			if b.by[s]--; b.by[s] <= 0 {
				delete(b.by, s)
			}
		}
		if b.tenantMax != nil {
			t := tenantOfSeries(ls)
			if b.byTenant[t]--; b.byTenant[t] <= 0 {
				delete(b.byTenant, t)
			}
		}
	}
}

// tenantSeries is the active series of each tenant, counted only with
// per-tenant limits.
func (b *seriesBudget) tenantSeries() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.byTenant)
}

// services is how many services hold series.
func (b *seriesBudget) services() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.by)
}
