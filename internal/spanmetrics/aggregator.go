// Package spanmetrics turns stored spans into golden signals: request
// counts by status and latency histograms (classic buckets and a native
// histogram) per service and operation, and per caller → callee edge, so
// that a service with no metrics endpoint of its own still has its traffic,
// errors and latency. The series follow the OpenTelemetry spanmetrics
// connector's names, which Jaeger's Monitor tab queries.
//
// An Aggregator is a prometheus.Collector (the ingester's /metrics, which a
// federation scrapes); a Writer appends the same series into a Prometheus
// storage.Appendable (the embedded TSDB of the all-in-one daemon).
package spanmetrics

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
)

// Options bound and shape the aggregator.
type Options struct {
	// MaxOperationsPerService caps the operations of one service; spans of
	// further operations are counted under the operation "other".
	MaxOperationsPerService int
	// MaxSeries caps the label sets of calls, per service and operation
	// and per edge; past it, spans of new label sets are counted under the
	// service and operation "other" (and edges under other → other).
	MaxSeries int
	// TenantMaxSeries, when set, returns a tenant's own cap within
	// MaxSeries (0: none but MaxSeries), so that a tenant with ever new
	// services or operations folds into its own "other" instead of
	// taking the series of the others. It is asked as series are made, so
	// a change applies to the next new series.
	TenantMaxSeries func(tenant string) int
	// Buckets are the classic histogram's upper bounds in milliseconds.
	Buckets []float64
	// NativeBucketFactor is the native histogram's growth factor from one
	// bucket to the next (1.1: about 4.5% relative error of a quantile).
	NativeBucketFactor float64
	// ServiceGrades gives the grade of spans whose resource carries none,
	// by service (the ingester's --ingester.service-grades).
	ServiceGrades map[string]int
}

// DefaultBuckets are the OpenTelemetry spanmetrics connector's default
// latency bounds, in milliseconds.
var DefaultBuckets = []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000}

// DefaultOptions suit one machine: 500 operations per service, 50,000
// series.
func DefaultOptions() Options {
	return Options{MaxOperationsPerService: 500, MaxSeries: 50000, Buckets: DefaultBuckets, NativeBucketFactor: 1.1}
}

// Longest service and operation names used as label values.
const maxLabelLen = 128

type seriesKey struct {
	tenant             string // "" for the default tenant
	service, operation string
	kind               model.SpanKind
	status             uint8
	grade              int
}

type seriesHandles struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

type edgeKey struct{ tenant, parent, child string }

type edgeHandles struct {
	calls, errors prometheus.Counter
	latency       prometheus.Observer
}

// Aggregator keeps the golden signals of spans. Its methods are safe for
// concurrent use.
type Aggregator struct {
	opts Options

	mu         sync.Mutex
	series     map[seriesKey]*seriesHandles
	edges      map[edgeKey]*edgeHandles
	operations map[serviceKey]map[string]struct{} // service → operations with a series
	perTenant  map[string]int                     // series and edges of each tenant (LabelTenant value)

	calls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	edgeCalls   *prometheus.CounterVec
	edgeErrors  *prometheus.CounterVec
	edgeLatency *prometheus.HistogramVec

	folded     *prometheus.CounterVec
	seriesSize prometheus.GaugeFunc
}

var _ prometheus.Collector = (*Aggregator)(nil)

// New returns an aggregator; zero fields of opts take DefaultOptions'.
func New(opts Options) *Aggregator {
	d := DefaultOptions()
	if opts.MaxOperationsPerService <= 0 {
		opts.MaxOperationsPerService = d.MaxOperationsPerService
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = d.MaxSeries
	}
	if len(opts.Buckets) == 0 {
		opts.Buckets = d.Buckets
	}
	if opts.NativeBucketFactor <= 1 {
		opts.NativeBucketFactor = d.NativeBucketFactor
	}
	a := &Aggregator{
		opts:       opts,
		series:     map[seriesKey]*seriesHandles{},
		edges:      map[edgeKey]*edgeHandles{},
		operations: map[serviceKey]map[string]struct{}{},
		perTenant:  map[string]int{},
	}
	labels := []string{LabelService, LabelOperation, LabelSpanKind, LabelStatusCode, LabelGrade, LabelTenant}
	a.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: CallsMetric,
		Help: "Server, consumer and root spans by service, operation, kind and status."}, labels)
	a.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: DurationMetric,
		Help:    "Duration of server, consumer and root spans in milliseconds, by service, operation, kind and status.",
		Buckets: opts.Buckets, NativeHistogramBucketFactor: opts.NativeBucketFactor,
		NativeHistogramMaxBucketNumber: 160, NativeHistogramMinResetDuration: time.Hour}, labels)
	edge := []string{LabelParent, LabelChild, LabelTenant}
	a.edgeCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: EdgeCallsMetric,
		Help: "Calls between services seen in spans, by parent and child service."}, edge)
	a.edgeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: EdgeErrorsMetric,
		Help: "Calls between services whose child span has an error status."}, edge)
	a.edgeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: EdgeLatencyMetric,
		Help:    "Duration of the child spans of calls between services.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), NativeHistogramBucketFactor: opts.NativeBucketFactor,
		NativeHistogramMaxBucketNumber: 160, NativeHistogramMinResetDuration: time.Hour}, edge)
	a.folded = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "spanmetrics", Name: "folded_spans_total",
		Help: `Spans counted under the operation "other" (reason operations, past the operations per service) or the service "other" (reason series, past the series cap; tenant_series, past the tenant's).`},
		[]string{"reason"})
	a.folded.WithLabelValues("operations")
	a.folded.WithLabelValues("series")
	a.folded.WithLabelValues("tenant_series")
	a.seriesSize = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "spanmetrics", Name: "series",
		Help: "Label sets of span calls, per service and operation and per edge, against the series cap."}, func() float64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return float64(len(a.series) + len(a.edges))
	})
	return a
}

// Counted reports whether a span is one of its service's requests: a
// server or consumer span, or a root span of any kind.
func Counted(s *model.Span) bool {
	return s.Kind == model.SpanKindServer || s.Kind == model.SpanKindConsumer || s.ParentSpanID.IsZero()
}

// Observe counts the requests among spans (see Counted) of the default
// tenant. Edges between services are reported separately, by ObserveEdge,
// by whoever joins children to their parents.
func (a *Aggregator) Observe(spans []model.Span) { a.ObserveTenant("", spans) }

// ObserveTenant counts the requests among spans of a tenant: their series
// carry LabelTenant, empty for the default tenant ("" or
// auth.DefaultTenant), so that each tenant reads its own.
func (a *Aggregator) ObserveTenant(tenant string, spans []model.Span) {
	tenant = tenantValue(tenant)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range spans {
		s := &spans[i]
		if !Counted(s) {
			continue
		}
		grade := s.Grade
		if grade == 0 {
			grade = a.opts.ServiceGrades[s.Service]
		}
		h := a.seriesFor(seriesKey{tenant: tenant, service: serviceLabel(s.Service), operation: labelValue(s.Name, maxLabelLen),
			kind: s.Kind, status: s.StatusCode, grade: grade})
		h.calls.Inc()
		h.duration.Observe(float64(s.Duration) / 1e6)
	}
}

// seriesFor returns the handles of k, folding it into "other" past the
// bounds. a.mu is held.
func (a *Aggregator) seriesFor(k seriesKey) *seriesHandles {
	if h, ok := a.series[k]; ok {
		return h
	}
	sk := serviceKey{k.tenant, k.service}
	ops := a.operations[sk]
	if _, known := ops[k.operation]; !known && len(ops) >= a.opts.MaxOperationsPerService {
		a.folded.WithLabelValues("operations").Inc()
		k.operation = Other
		if h, ok := a.series[k]; ok {
			return h
		}
	}
	if reason := a.full(k.tenant); reason != "" {
		a.folded.WithLabelValues(reason).Inc()
		k.service, k.operation = Other, Other
		if h, ok := a.series[k]; ok {
			return h
		}
		// A new label set of other/other: bounded by the kinds, statuses
		// and grades, so it may go past the cap.
	}
	lv := []string{k.service, k.operation, KindName(k.kind), StatusName(k.status), gradeName(k.grade), k.tenant}
	h := &seriesHandles{calls: a.calls.WithLabelValues(lv...), duration: a.duration.WithLabelValues(lv...)}
	a.series[k] = h
	a.perTenant[k.tenant]++
	if ops == nil {
		ops = map[string]struct{}{}
		a.operations[sk] = ops
	}
	ops[k.operation] = struct{}{}
	return h
}

// ObserveEdge counts one call from the service parent to the service
// child, whose span lasted d and failed when failed is set. Calls inside a
// service are not edges and are ignored.
func (a *Aggregator) ObserveEdge(parent, child string, d time.Duration, failed bool) {
	a.ObserveEdgeTenant("", parent, child, d, failed)
}

// ObserveEdgeTenant is ObserveEdge for a call between services of a
// tenant (see ObserveTenant).
func (a *Aggregator) ObserveEdgeTenant(tenant, parent, child string, d time.Duration, failed bool) {
	if parent == child {
		return
	}
	tenant = tenantValue(tenant)
	k := edgeKey{tenant, serviceLabel(parent), serviceLabel(child)}
	a.mu.Lock()
	h, ok := a.edges[k]
	if !ok {
		if reason := a.full(tenant); reason != "" {
			a.folded.WithLabelValues(reason).Inc()
			k = edgeKey{tenant, Other, Other}
			h, ok = a.edges[k]
		}
		if !ok {
			h = &edgeHandles{calls: a.edgeCalls.WithLabelValues(k.parent, k.child, k.tenant),
				errors: a.edgeErrors.WithLabelValues(k.parent, k.child, k.tenant), latency: a.edgeLatency.WithLabelValues(k.parent, k.child, k.tenant)}
			a.edges[k] = h
			a.perTenant[k.tenant]++
		}
	}
	a.mu.Unlock()
	h.calls.Inc()
	if failed {
		h.errors.Inc()
	}
	h.latency.Observe(d.Seconds())
}

// full tells why a new series of tenant (its LabelTenant value) is folded
// into "other": "series" past MaxSeries, "tenant_series" past the
// tenant's own cap, "" when it is not. a.mu is held.
func (a *Aggregator) full(tenant string) string {
	if len(a.series)+len(a.edges) >= a.opts.MaxSeries {
		return "series"
	}
	if a.opts.TenantMaxSeries != nil {
		t := tenant
		if t == "" {
			t = auth.DefaultTenant
		}
		if limit := a.opts.TenantMaxSeries(t); limit > 0 && a.perTenant[tenant] >= limit {
			return "tenant_series"
		}
	}
	return ""
}

// serviceKey is a service of a tenant.
type serviceKey struct{ tenant, service string }

// tenantValue is the LabelTenant value of a tenant's series.
func tenantValue(tenant string) string {
	if tenant == auth.DefaultTenant {
		return ""
	}
	return tenant
}

func serviceLabel(s string) string {
	if s == "" {
		return UnknownService
	}
	return labelValue(s, maxLabelLen)
}

// labelValue is s as a label value: valid UTF-8 (Prometheus refuses
// anything else), at most n bytes, cut on a character boundary.
func labelValue(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// signals is the collector of the golden-signal series alone, without the
// aggregator's own metrics: what a Writer stores.
type signals struct{ a *Aggregator }

func (s signals) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.a.signalCollectors() {
		c.Describe(ch)
	}
}

func (s signals) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.a.signalCollectors() {
		c.Collect(ch)
	}
}

func (a *Aggregator) signalCollectors() []prometheus.Collector {
	return []prometheus.Collector{a.calls, a.duration, a.edgeCalls, a.edgeErrors, a.edgeLatency}
}

// Describe implements prometheus.Collector: the golden-signal series and
// the aggregator's own vigil_spanmetrics_* metrics.
func (a *Aggregator) Describe(ch chan<- *prometheus.Desc) {
	signals{a}.Describe(ch)
	a.folded.Describe(ch)
	a.seriesSize.Describe(ch)
}

// Collect implements prometheus.Collector.
func (a *Aggregator) Collect(ch chan<- prometheus.Metric) {
	signals{a}.Collect(ch)
	a.folded.Collect(ch)
	a.seriesSize.Collect(ch)
}
