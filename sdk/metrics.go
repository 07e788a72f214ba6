package sdk

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// unmatchedRoute is the route label of a request no ServeMux pattern
// matched (404, 405, or a handler that is not a ServeMux).
const unmatchedRoute = "unmatched"

// metrics are the golden signals; every series carries the constant labels
// service and grade.
type metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec   // route, method, code
	httpDuration *prometheus.HistogramVec // route, method, code
	httpInflight prometheus.Gauge
	httpCache    sync.Map // seriesKey → *httpSeries

	clientRequests *prometheus.CounterVec   // peer, method, code
	clientDuration *prometheus.HistogramVec // peer, method, code
	clientInflight prometheus.Gauge

	grpcRequests       *prometheus.CounterVec   // method, code
	grpcDuration       *prometheus.HistogramVec // method, code
	grpcInflight       prometheus.Gauge
	grpcClientRequests *prometheus.CounterVec
	grpcClientDuration *prometheus.HistogramVec
	grpcClientInflight prometheus.Gauge

	panics      *prometheus.CounterVec // where
	logsShipped prometheus.Counter
	logsDropped *prometheus.CounterVec // reason
}

func newMetrics(c Config) (*metrics, error) {
	reg := c.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	f := &factory{reg: reg, cl: prometheus.Labels{"service": c.Service, "grade": strconv.Itoa(c.Grade)}, buckets: c.Buckets}
	m := &metrics{
		reg:          reg,
		httpRequests: f.counter("vigil_http_requests_total", "HTTP requests served, by route pattern, method and status code.", "route", "method", "code"),
		httpDuration: f.histogram("vigil_http_request_duration_seconds", "Time to serve an HTTP request, until the handler returned.", "route", "method", "code"),
		httpInflight: f.gauge("vigil_http_inflight_requests", "HTTP requests being served."),

		clientRequests: f.counter("vigil_http_client_requests_total", "Outgoing HTTP requests, by peer host:port, method and status code (error when no response came).", "peer", "method", "code"),
		clientDuration: f.histogram("vigil_http_client_request_duration_seconds", "Time from sending an outgoing HTTP request to its response headers.", "peer", "method", "code"),
		clientInflight: f.gauge("vigil_http_client_inflight_requests", "Outgoing HTTP requests awaiting their response headers."),

		grpcRequests:       f.counter("vigil_grpc_requests_total", "gRPC calls served, by full method and status code.", "method", "code"),
		grpcDuration:       f.histogram("vigil_grpc_request_duration_seconds", "Time to serve a gRPC call.", "method", "code"),
		grpcInflight:       f.gauge("vigil_grpc_inflight_requests", "gRPC calls being served."),
		grpcClientRequests: f.counter("vigil_grpc_client_requests_total", "Outgoing gRPC calls, by full method and status code.", "method", "code"),
		grpcClientDuration: f.histogram("vigil_grpc_client_request_duration_seconds", "Time of an outgoing gRPC call.", "method", "code"),
		grpcClientInflight: f.gauge("vigil_grpc_client_inflight_requests", "Outgoing gRPC calls in progress."),

		panics:      f.counter("vigil_sdk_panics_total", "Panics recovered by the SDK, by where: http, grpc or goroutine.", "where"),
		logsShipped: f.counter("vigil_sdk_logs_shipped_total", "Log lines the collector accepted.").WithLabelValues(),
		logsDropped: f.counter("vigil_sdk_logs_dropped_total", "Log lines not shipped, by reason: queue_full, rejected (4xx from the collector) or shutdown.", "reason"),
	}
	if f.err != nil {
		return nil, fmt.Errorf("Config.Registry: cannot register the SDK's metrics (a second Init on the same registry?): %w", f.err)
	}
	return m, nil
}

// seriesKey names the series of one kind of served request.
type seriesKey struct {
	route, method string
	code          int
}

// httpSeries are the series of one seriesKey, resolved once: a request
// then costs one map lookup instead of hashing its labels twice.
type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
	// lastExemplar is when the series last got an exemplar, Unix ns.
	lastExemplar atomic.Int64
}

// exemplarInterval spaces the exemplars of one series: a scrape shows one
// per bucket, and making one costs several allocations.
const exemplarInterval = time.Second

// exemplarDue reports whether a request that started at now should leave
// its trace id as the series' exemplar, and claims the slot if so.
func (h *httpSeries) exemplarDue(now time.Time) bool {
	last := h.lastExemplar.Load()
	return now.UnixNano()-last >= int64(exemplarInterval) && h.lastExemplar.CompareAndSwap(last, now.UnixNano())
}

// httpSeries returns the series of a served request. The cache grows like
// the metrics themselves: routes × methods × codes.
func (m *metrics) httpSeries(route, method string, code int) *httpSeries {
	k := seriesKey{route, method, code}
	if v, ok := m.httpCache.Load(k); ok {
		return v.(*httpSeries)
	}
	c := codeLabel(code)
	v, _ := m.httpCache.LoadOrStore(k, &httpSeries{
		requests: m.httpRequests.WithLabelValues(route, method, c),
		duration: m.httpDuration.WithLabelValues(route, method, c),
	})
	return v.(*httpSeries)
}

// factory builds the SDK's metrics; err is the first registration error.
type factory struct {
	reg     prometheus.Registerer
	cl      prometheus.Labels
	buckets []float64
	err     error
}

func (f *factory) register(c prometheus.Collector) {
	if err := f.reg.Register(c); err != nil && f.err == nil {
		f.err = err
	}
}

func (f *factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.cl}, labels)
	f.register(v)
	return v
}

func (f *factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.cl})
	f.register(g)
	return g
}

// histogram has both the classic buckets and a native (sparse) histogram
// with 10% bucket growth; a scraper that negotiates protobuf gets both.
func (f *factory) histogram(name, help string, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: name, Help: help, ConstLabels: f.cl,
		Buckets:                         f.buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, labels)
	f.register(v)
	return v
}

// MetricsHandler serves the SDK's registry in the Prometheus exposition
// formats (text, and protobuf with native histograms when the scraper asks
// for it); mount it on the service's mux, e.g. "GET /metrics". Before Init
// it answers 503.
func MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := current.Load()
		if s == nil {
			http.Error(w, "vigil sdk: Init has not been called", http.StatusServiceUnavailable)
			return
		}
		s.metricsHandler.ServeHTTP(w, r)
	})
}

// Registry returns the registry the SDK's metrics are in, for the
// service's own metrics; nil before Init.
func Registry() *prometheus.Registry {
	if s := current.Load(); s != nil {
		return s.m.reg
	}
	return nil
}

func newMetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})
}

// codeLabels holds the status code labels, so that labelling a request
// allocates nothing for the usual codes.
var codeLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func codeLabel(code int) string {
	if code >= 0 && code < len(codeLabels) {
		return codeLabels[code]
	}
	return strconv.Itoa(code)
}

// methodLabel bounds the method label: an unknown method is OTHER.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// routeLabel turns a ServeMux pattern ("GET example.com/users/{id}") into
// the route label ("example.com/users/{id}"): the method is its own label.
func routeLabel(pattern string) string {
	if pattern == "" {
		return unmatchedRoute
	}
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case ' ', '\t':
			for i < len(pattern) && (pattern[i] == ' ' || pattern[i] == '\t') {
				i++
			}
			return pattern[i:]
		case '/':
			return pattern
		}
	}
	return pattern
}
