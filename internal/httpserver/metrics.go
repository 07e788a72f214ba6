package httpserver

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RequestMetrics count the requests of one HTTP API by handler (an
// endpoint, a receiver) and status code, and can time them. Every HTTP API
// of Vigil (the query APIs, the collector's receivers) records its
// requests through one; the handlers report the status they answered,
// since some also count requests that are not HTTP (OTLP/gRPC).
type RequestMetrics struct {
	requests *prometheus.CounterVec   // label, code
	duration *prometheus.HistogramVec // label; nil when not timed
}

// RequestMetricsOpts name the metrics of one API:
// vigil_<Subsystem>_<Name>{<Label>,code} and, with DurationHelp,
// vigil_<Subsystem>_request_duration_seconds{<Label>}.
type RequestMetricsOpts struct {
	Subsystem string
	// Label names what requests are counted by: "endpoint", "receiver".
	Label string
	// Name is the counter's name; "requests_total" when empty.
	Name string
	Help string
	// DurationHelp, when set, adds the duration histogram.
	DurationHelp string
}

// NewRequestMetrics returns an API's request metrics, registered with reg
// when it is not nil.
func NewRequestMetrics(o RequestMetricsOpts, reg prometheus.Registerer) *RequestMetrics {
	if o.Name == "" {
		o.Name = "requests_total"
	}
	m := &RequestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: o.Subsystem, Name: o.Name, Help: o.Help,
		}, []string{o.Label, "code"}),
	}
	cs := []prometheus.Collector{m.requests}
	if o.DurationHelp != "" {
		m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vigil", Subsystem: o.Subsystem, Name: "request_duration_seconds", Help: o.DurationHelp,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{o.Label})
		cs = append(cs, m.duration)
	}
	if reg != nil {
		reg.MustRegister(cs...)
	}
	return m
}

// Count records a request to handler name answered with code.
func (m *RequestMetrics) Count(name string, code int) {
	m.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
}

// Observe records a request to handler name that started at start and was
// answered with code.
func (m *RequestMetrics) Observe(name string, code int, start time.Time) {
	m.Count(name, code)
	if m.duration != nil {
		m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	}
}
