// Package jaeger serves Jaeger's query HTTP JSON API (the one the Jaeger UI
// and Grafana's Jaeger data source read) over a storage.SpanReader, and the
// dependency graph when the reader is also a storage.DependencyReader. A
// GetTrace error that is storage.ErrTraceNotFound is answered 404.
package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Options configures the API.
type Options struct {
	// DefaultLimit is the number of traces a search returns without limit=.
	DefaultLimit int
	// MaxLimit caps limit=.
	MaxLimit int
	// DefaultLookback is the search window without start=.
	DefaultLookback time.Duration
	// Timeout bounds one request.
	Timeout time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer

	now func() time.Time
}

// DefaultOptions returns Jaeger's defaults.
func DefaultOptions() Options {
	return Options{DefaultLimit: 100, MaxLimit: 1500, DefaultLookback: 24 * time.Hour, Timeout: time.Minute, Logger: slog.Default()}
}

// API serves Jaeger's query API.
type API struct {
	opts    Options
	spans   storage.SpanReader
	deps    storage.SpanReader // the reader as given, for its DependencyReader
	metrics *httpserver.RequestMetrics
}

// sharedSpans reads traces with the children of Zipkin shared spans under
// their server half (model.ReparentSharedChildren), as Jaeger shows them.
type sharedSpans struct{ storage.SpanReader }

func (s sharedSpans) GetTrace(ctx context.Context, id model.TraceID) ([]model.Span, error) {
	spans, err := s.SpanReader.GetTrace(ctx, id)
	model.ReparentSharedChildren(spans)
	return spans, err
}

func (s sharedSpans) FindTraces(ctx context.Context, q storage.TraceQuery) ([][]model.Span, error) {
	traces, err := s.SpanReader.FindTraces(ctx, q)
	for _, t := range traces {
		model.ReparentSharedChildren(t)
	}
	return traces, err
}

// NewAPI returns the Jaeger API over r.
func NewAPI(opts Options, r storage.SpanReader) *API {
	d := DefaultOptions()
	if opts.Logger == nil {
		opts.Logger = d.Logger
	}
	if opts.DefaultLimit <= 0 {
		opts.DefaultLimit = d.DefaultLimit
	}
	if opts.MaxLimit <= 0 {
		opts.MaxLimit = d.MaxLimit
	}
	if opts.DefaultLookback <= 0 {
		opts.DefaultLookback = d.DefaultLookback
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	a := &API{
		opts:  opts,
		spans: sharedSpans{r},
		deps:  r,
		metrics: httpserver.NewRequestMetrics(httpserver.RequestMetricsOpts{
			Subsystem: "jaeger", Label: "endpoint",
			Help:         "Jaeger query API requests by endpoint and status code.",
			DurationHelp: "Jaeger query API request duration by endpoint.",
		}, opts.Registerer),
	}
	return a
}

// RegisterHTTP adds the Jaeger endpoints to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	route := func(path, name string, h func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc("GET "+path, a.instrument(name, h))
	}
	route("/api/services", "services", a.services)
	route("/api/services/{service}/operations", "service_operations", a.serviceOperations)
	route("/api/operations", "operations", a.operations)
	route("/api/traces", "traces", a.findTraces)
	route("/api/traces/{traceID}", "trace", a.getTrace)
	route("/api/dependencies", "dependencies", a.dependencies)
}

// response is Jaeger's envelope.
type response struct {
	Data   any             `json:"data"`
	Total  int             `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
	Errors []responseError `json:"errors"`
}

type responseError struct {
	Code    int    `json:"code,omitempty"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID,omitempty"`
}

// paramError is a bad request parameter: 400.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func badParam(name, format string, args ...any) error {
	return &paramError{"parameter " + name + ": " + sprintf(format, args...)}
}

// notFoundError is an unknown trace: 404.
type notFoundError struct{ id string }

func (e *notFoundError) Error() string { return "trace not found: " + e.id }

func writeJSON(w http.ResponseWriter, code int, v response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// statusOf maps a handler's error to its HTTP status: 400 for a bad
// parameter, 404 for an unknown trace, 504 for a timeout, 500 otherwise.
func statusOf(err error) int {
	var pe *paramError
	var nf *notFoundError
	if code, ok := querylimit.StatusOf(err); ok {
		return code
	}
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest
	case errors.As(err, &nf):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func (a *API) instrument(name string, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		code := http.StatusOK
		if err := r.ParseForm(); err != nil {
			code = http.StatusBadRequest
			writeJSON(w, code, response{Errors: []responseError{{Code: code, Msg: "cannot parse request parameters: " + err.Error()}}})
		} else if err := h(w, r); err != nil {
			if code = statusOf(err); code == http.StatusInternalServerError {
				a.opts.Logger.Warn("jaeger query failed", "endpoint", name, "err", err)
			}
			writeJSON(w, code, response{Errors: []responseError{{Code: code, Msg: err.Error()}}})
		}
		a.metrics.Observe(name, code, t0)
	}
}
