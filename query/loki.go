package query

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Options configures the query API.
type Options struct {
	// MaxEntries is the largest limit a log query may ask for.
	MaxEntries int
	// MaxSeries bounds the series of one metric or volume query (Loki's
	// max_query_series); 0 keeps the engine's default.
	MaxSeries int
	// Timeout bounds one query.
	Timeout time.Duration
	// Version is reported by /loki/api/v1/status/buildinfo.
	Version string
	// Tail and Patterns configure /loki/api/v1/tail and /patterns.
	Tail     TailOptions
	Patterns PatternOptions

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns Loki's defaults.
func DefaultOptions() Options {
	return Options{MaxEntries: 5000, MaxSeries: defaultMaxSeries, Timeout: 2 * time.Minute, Version: "dev", Logger: slog.Default()}
}

// API serves Grafana Loki's HTTP API over a storage.LogReader.
type API struct {
	opts    Options
	store   conventions
	engine  *Engine
	metrics *httpserver.RequestMetrics
	tails   tailSet
	// patternSources counts /patterns answers by where the patterns came
	// from: "stored" (mined at ingest) or "mined" (at query time).
	patternSources *prometheus.CounterVec
}

// NewAPI returns the Loki API over s.
func NewAPI(opts Options, s storage.LogReader) *API {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &API{
		opts:   opts,
		store:  conventions{s},
		engine: newEngineWithMaxSeries(conventions{s}, opts.MaxSeries),
		metrics: httpserver.NewRequestMetrics(httpserver.RequestMetricsOpts{
			Subsystem: "query", Label: "endpoint",
			Help:         "Query API requests by endpoint and status code.",
			DurationHelp: "Query API request duration by endpoint.",
		}, opts.Registerer),
		patternSources: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "query", Name: "patterns_answers_total",
			Help: "Answers of /loki/api/v1/patterns by where their patterns came from: stored (mined at ingest) or mined (at query time).",
		}, []string{"source"}),
	}
	a.patternSources.WithLabelValues("stored")
	a.patternSources.WithLabelValues("mined")
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(a.patternSources)
	}
	return a
}

// RegisterHTTP adds the Loki endpoints to mux, for GET and POST (form).
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	route := func(path, name string, h func(w http.ResponseWriter, r *http.Request) error) {
		handler := a.instrument(name, h)
		mux.HandleFunc("GET "+path, handler)
		mux.HandleFunc("POST "+path, handler)
	}
	route("/loki/api/v1/query_range", "query_range", a.queryRange)
	route("/loki/api/v1/query", "query", a.query)
	route("/loki/api/v1/labels", "labels", a.labels)
	route("/loki/api/v1/label/{name}/values", "label_values", a.labelValues)
	route("/loki/api/v1/series", "series", a.series)
	route("/loki/api/v1/status/buildinfo", "buildinfo", a.buildInfo)
	route("/loki/api/v1/index/stats", "index_stats", a.indexStats)
	route("/loki/api/v1/index/volume", "index_volume", a.indexVolume(false))
	route("/loki/api/v1/index/volume_range", "index_volume_range", a.indexVolume(true))
	route("/loki/api/v1/detected_labels", "detected_labels", a.detectedLabels)
	route("/loki/api/v1/detected_fields", "detected_fields", a.detectedFields)
	route("/loki/api/v1/detected_field/{name}/values", "detected_field_values", a.detectedFieldValues)
	route("/loki/api/v1/drilldown-limits", "drilldown_limits", a.drilldownLimits)
	route("/loki/api/v1/patterns", "patterns", a.patterns)
	mux.HandleFunc("GET /loki/api/v1/tail", a.tail)
}

// instrument turns a handler's error into Loki's error response: plain text,
// 400 for a bad query or parameter, 500 otherwise.
func (a *API) instrument(name string, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		code := http.StatusOK
		if err := r.ParseForm(); err != nil {
			code = http.StatusBadRequest
			http.Error(w, "cannot parse request parameters: "+err.Error(), code)
		} else if err := h(w, r); err != nil {
			var pe *paramError
			var qe *logql.ParseError
			limit, limited := querylimit.StatusOf(err)
			switch {
			case limited:
				code = limit
			case errors.As(err, &pe), errors.As(err, &qe):
				code = http.StatusBadRequest
			case errors.Is(err, context.DeadlineExceeded):
				code = http.StatusGatewayTimeout
			default:
				code = http.StatusInternalServerError
				a.opts.Logger.Warn("query failed", "endpoint", name, "err", err)
			}
			http.Error(w, err.Error(), code)
		}
		a.metrics.Observe(name, code, t0)
	}
}

func parseQuery(r *http.Request) (logql.Expr, error) {
	q := r.FormValue("query")
	if q == "" {
		return nil, badParam("query parameter is required")
	}
	return logql.ParseExpr(q)
}

func (a *API) queryRange(w http.ResponseWriter, r *http.Request) error {
	now := time.Now().UnixNano()
	start, end, err := timeRange(r, now)
	if err != nil {
		return err
	}
	expr, err := parseQuery(r)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if sel, ok := expr.(*logql.LogSelectorExpr); ok {
		limit, err := parseLimit(r, a.opts.MaxEntries)
		if err != nil {
			return err
		}
		backward, err := parseDirection(r)
		if err != nil {
			return err
		}
		streams, st, err := a.engine.SelectLogs(r.Context(), sel, start, end, limit, backward)
		if err != nil {
			return err
		}
		if categorizeLabels(r) {
			writeCategorizedStreams(w, streams, backward, st, time.Since(t0))
		} else {
			writeStreams(w, streams, st, time.Since(t0))
		}
		return nil
	}
	step, err := parseStep(r, start, end)
	if err != nil {
		return err
	}
	series, st, err := a.engine.EvalRange(r.Context(), expr, start, end, step)
	if err != nil {
		return err
	}
	writeMatrix(w, series, st, time.Since(t0))
	return nil
}

func (a *API) query(w http.ResponseWriter, r *http.Request) error {
	t, err := parseTime("time", r.FormValue("time"), time.Now().UnixNano())
	if err != nil {
		return err
	}
	expr, err := parseQuery(r)
	if err != nil {
		return err
	}
	if logql.IsScalar(expr) {
		// Numbers alone ("1+1") are a scalar, as in Loki and Prometheus.
		writeScalar(w, t, evalScalar(expr))
		return nil
	}
	if _, ok := expr.(*logql.LogSelectorExpr); ok {
		return badParam("log queries are not supported as an instant query type, please change your query to a range query type")
	}
	t0 := time.Now()
	series, st, err := a.engine.EvalRange(r.Context(), expr, t, t, 1)
	if err != nil {
		return err
	}
	writeVector(w, series, st, time.Since(t0))
	return nil
}

// selectorParam parses the optional stream selector of the label and series
// endpoints.
func selectorParam(v string) ([]*model.LabelMatcher, error) {
	if v == "" {
		return nil, nil
	}
	sel, err := logql.ParseLogSelector(v)
	if err != nil {
		return nil, err
	}
	return sel.Matchers, nil
}

// rangeSelector reads the range and the optional stream selector (query)
// of the label endpoints.
func rangeSelector(r *http.Request) (start, end int64, ms []*model.LabelMatcher, err error) {
	if start, end, err = timeRange(r, time.Now().UnixNano()); err != nil {
		return 0, 0, nil, err
	}
	ms, err = selectorParam(r.FormValue("query"))
	return start, end, ms, err
}

func (a *API) labels(w http.ResponseWriter, r *http.Request) error {
	start, end, ms, err := rangeSelector(r)
	if err != nil {
		return err
	}
	var names []string
	if len(ms) > 0 {
		names, err = a.store.labelNamesMatching(r.Context(), start, end+1, ms)
	} else {
		names, err = a.store.LabelNames(r.Context(), start, end+1)
	}
	if err != nil {
		return err
	}
	writeData(w, nonNil(names))
	return nil
}

func (a *API) labelValues(w http.ResponseWriter, r *http.Request) error {
	start, end, ms, err := rangeSelector(r)
	if err != nil {
		return err
	}
	values, err := a.store.LabelValues(r.Context(), r.PathValue("name"), start, end+1, ms)
	if err != nil {
		return err
	}
	writeData(w, nonNil(values))
	return nil
}

func (a *API) series(w http.ResponseWriter, r *http.Request) error {
	start, end, err := timeRange(r, time.Now().UnixNano())
	if err != nil {
		return err
	}
	matches := r.Form["match[]"]
	if len(matches) == 0 {
		matches = r.Form["match"]
	}
	if len(matches) == 0 {
		return badParam("at least one match[] selector is required")
	}
	seen := map[string]bool{}
	out := []map[string]string{}
	for _, m := range matches {
		ms, err := selectorParam(m)
		if err != nil {
			return err
		}
		series, err := a.store.Series(r.Context(), start, end+1, ms)
		if err != nil {
			return err
		}
		for _, ls := range series {
			k := ls.String()
			if !seen[k] {
				seen[k] = true
				out = append(out, ls.Map())
			}
		}
	}
	writeData(w, out)
	return nil
}

func (a *API) buildInfo(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write([]byte(`{"version":` + strconv.Quote(a.opts.Version) + `,"revision":"","branch":"","buildUser":"","buildDate":"","goVersion":""}`))
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
