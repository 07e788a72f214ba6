// Package jaegermonitor serves Jaeger's monitoring API, what the Jaeger
// UI's Monitor tab reads: GET /api/metrics/calls, /api/metrics/errors,
// /api/metrics/latencies and /api/metrics/minstep, with the query
// parameters and the JSON of Jaeger's query service. It answers with
// PromQL, as Jaeger's Prometheus metrics reader does, over the span golden
// signals (internal/spanmetrics) in a Prometheus storage it is given.
package jaegermonitor

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// Options configure the API.
type Options struct {
	// CallsMetric and DurationMetric are the names of the calls counter
	// and the latency histogram (in milliseconds), spanmetrics' by default.
	CallsMetric, DurationMetric string
	// MaxServices caps the service parameters of one request.
	MaxServices int
	// MaxPoints caps lookback/step, the points of each series, as
	// Prometheus caps a range query's.
	MaxPoints int
	// MinStep is the answer of /api/metrics/minstep: the smallest step a
	// query may ask for (Jaeger's Prometheus reader answers 1 ms).
	MinStep time.Duration
	// Timeout bounds one request.
	Timeout time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer

	now func() time.Time
}

// DefaultOptions returns defaults that suit one machine.
func DefaultOptions() Options {
	return Options{CallsMetric: spanmetrics.CallsMetric, DurationMetric: spanmetrics.DurationMetric,
		MaxServices: 100, MaxPoints: 11000, MinStep: time.Millisecond, Timeout: time.Minute, Logger: slog.Default()}
}

// API serves the monitoring endpoints.
type API struct {
	opts      Options
	engine    promql.QueryEngine
	queryable storage.Queryable
	requests  *httpserver.RequestMetrics
	badParams *prometheus.CounterVec
}

// New returns the API over the metrics in q, queried with engine (a
// *promql.Engine).
func New(opts Options, engine promql.QueryEngine, q storage.Queryable) *API {
	d := DefaultOptions()
	opts.CallsMetric = cmp.Or(opts.CallsMetric, d.CallsMetric)
	opts.DurationMetric = cmp.Or(opts.DurationMetric, d.DurationMetric)
	opts.MaxServices = cmp.Or(max(opts.MaxServices, 0), d.MaxServices)
	opts.MaxPoints = cmp.Or(max(opts.MaxPoints, 0), d.MaxPoints)
	opts.MinStep = cmp.Or(max(opts.MinStep, 0), d.MinStep)
	opts.Timeout = cmp.Or(max(opts.Timeout, 0), d.Timeout)
	opts.Logger = cmp.Or(opts.Logger, d.Logger)
	if opts.now == nil {
		opts.now = time.Now
	}
	a := &API{opts: opts, engine: engine, queryable: q,
		requests: httpserver.NewRequestMetrics(httpserver.RequestMetricsOpts{
			Subsystem: "jaeger_monitor", Label: "endpoint",
			Help:         "Jaeger monitoring API requests by endpoint and status code.",
			DurationHelp: "Jaeger monitoring API request duration by endpoint.",
		}, opts.Registerer),
		badParams: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "jaeger_monitor", Name: "bad_params_total",
			Help: "Jaeger monitoring API requests refused with 400, by the parameter at fault."}, []string{"param"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(a.badParams)
	}
	return a
}

// RegisterHTTP adds the endpoints to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	route := func(name string, h func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc("GET /api/metrics/"+name, a.instrument(name, h))
	}
	route("calls", a.calls)
	route("errors", a.errors)
	route("latencies", a.latencies)
	route("minstep", a.minStep)
}

func (a *API) instrument(name string, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		code := http.StatusOK
		if err := h(w, r.WithContext(ctx)); err != nil {
			var pe *paramError
			limit, limited := querylimit.StatusOf(err)
			switch {
			case limited:
				code = limit
			case errors.As(err, &pe):
				code = http.StatusBadRequest
				a.badParams.WithLabelValues(pe.param).Inc()
			case errors.Is(err, context.DeadlineExceeded):
				code = http.StatusGatewayTimeout
			default:
				code = http.StatusInternalServerError
				a.opts.Logger.Warn("jaeger monitoring query failed", "endpoint", name, "err", err)
			}
			writeError(w, code, err)
		}
		a.requests.Observe(name, code, t0)
	}
}

func (a *API) minStep(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, envelope{Data: a.opts.MinStep.Milliseconds()})
	return nil
}
