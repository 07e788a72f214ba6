// Package profiles answers queries on stored profiles three ways, on one
// storage.ProfileReader: Grafana's Pyroscope data source (the connect
// service querier.v1.QuerierService), a pprof API under
// /vigil/api/v1/profiles/ whose downloads open in go tool pprof, and
// pprof's own web UI under /vigil/ui/pprof/. docs/profiles.md documents
// them.
package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Options configure an API.
type Options struct {
	// DefaultRange is the range queried when a request gives no start;
	// 0 means one hour before end.
	DefaultRange time.Duration
	// UICacheSize bounds the pprof web UIs kept (one per selection and
	// range); the least recently used is evicted. 0 means 8.
	UICacheSize int
	// Logger receives errors of the store; nil discards them.
	Logger *slog.Logger
	// Registerer receives the API's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// API serves profile queries.
type API struct {
	r    storage.ProfileReader
	opts Options
	log  *slog.Logger

	requests *prometheus.CounterVec
	bad      *prometheus.CounterVec
	failed   *prometheus.CounterVec

	ui *uiCache
}

// Prefixes under which RegisterHTTP mounts the pprof API and pprof's UI.
const (
	APIPrefix = "/vigil/api/v1/profiles/"
	UIPrefix  = "/vigil/ui/pprof/"
)

// New returns an API reading r.
func New(opts Options, r storage.ProfileReader) *API {
	if opts.DefaultRange <= 0 {
		opts.DefaultRange = time.Hour
	}
	if opts.UICacheSize <= 0 {
		opts.UICacheSize = 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &API{r: r, opts: opts, log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_profile_query_requests_total",
		Help: "Profile query requests, by API (pyroscope, pprof, ui).",
	}, []string{"api"})
	a.bad = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_profile_query_bad_requests_total",
		Help: "Profile query requests refused as malformed (bad selector, time, profile type or id), by API.",
	}, []string{"api"})
	a.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_profile_query_failures_total",
		Help: "Profile query requests that failed on the store's side, by API.",
	}, []string{"api"})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(a.requests, a.bad, a.failed)
	}
	a.ui = newUICache(a, opts.UICacheSize)
	return a
}

// RegisterHTTP mounts the three query APIs on mux: the connect service at
// /querier.v1.QuerierService/, the pprof API under APIPrefix and pprof's
// web UI under UIPrefix.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	path, h := a.querierHandler()
	mux.Handle(path, h)
	mux.HandleFunc("GET "+APIPrefix+"merge", a.servePprof(a.merge))
	mux.HandleFunc("GET "+APIPrefix+"diff", a.servePprof(a.diff))
	mux.HandleFunc("GET "+APIPrefix+"profile/{id}", a.servePprof(a.profile))
	mux.HandleFunc("GET "+APIPrefix+"top", a.serveJSON(a.top))
	mux.HandleFunc("GET "+APIPrefix+"types", a.serveJSON(a.types))
	mux.HandleFunc("GET "+APIPrefix+"labels", a.serveJSON(a.labels))
	mux.HandleFunc("GET "+APIPrefix+"label/{name}/values", a.serveJSON(a.labelValues))
	mux.HandleFunc("GET "+APIPrefix+"series", a.serveJSON(a.series))
	mux.HandleFunc("GET "+APIPrefix+"list", a.serveJSON(a.list))
	mux.Handle(UIPrefix, a.ui)
}

// servePprof answers the gzipped pprof fn returns, named by its second
// result.
func (a *API) servePprof(fn func(r *http.Request) (*profile.Profile, string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.requests.WithLabelValues("pprof").Inc()
		p, name, err := fn(r)
		if err != nil {
			a.fail(w, "pprof", err)
			return
		}
		writePprof(w, p, name)
	}
}

// serveJSON answers, as JSON, what fn finds for the request's selection.
func (a *API) serveJSON(fn func(r *http.Request, sel storage.ProfileSelector) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.requests.WithLabelValues("pprof").Inc()
		sel, err := a.selection(r, "")
		if err == nil {
			var data any
			if data, err = fn(r, sel); err == nil {
				writeJSON(w, data)
				return
			}
		}
		a.fail(w, "pprof", err)
	}
}

// selection reads query (prefixed by pfx: "" or "base_"), start and end.
func (a *API) selection(r *http.Request, pfx string) (storage.ProfileSelector, error) {
	if err := r.ParseForm(); err != nil {
		return storage.ProfileSelector{}, badf("cannot parse the request's parameters: %v", err)
	}
	return a.selectionOf(r.Form, pfx)
}

func (a *API) selectionOf(form url.Values, pfx string) (storage.ProfileSelector, error) {
	var ps storage.ProfileSelector
	q := form.Get(pfx + "query")
	if pfx != "" && q == "" {
		q = form.Get("query")
	}
	sel, err := parseSelector(q)
	if err != nil {
		return ps, badf("%s: %v", pfx+"query", err)
	}
	if sel.Name != "" && !model.ValidProfileType(sel.Name) {
		return ps, badf("%squery: %q is not a profile type", pfx, sel.Name)
	}
	ps.Type, ps.Matchers = sel.Name, sel.Matchers
	ps.End = a.opts.Now().UnixNano()
	if v := form.Get(pfx + "end"); v != "" {
		if ps.End, err = parseTime(pfx+"end", v); err != nil {
			return ps, err
		}
	}
	ps.Start = ps.End - int64(a.opts.DefaultRange)
	if v := form.Get(pfx + "start"); v != "" {
		if ps.Start, err = parseTime(pfx+"start", v); err != nil {
			return ps, err
		}
	}
	if ps.End < ps.Start {
		return ps, badf("%send is before %sstart", pfx, pfx)
	}
	return ps, nil
}

func (a *API) mergeQuery(r *http.Request, pfx string) (storage.MergeQuery, error) {
	ps, err := a.selection(r, pfx)
	if err != nil {
		return storage.MergeQuery{}, err
	}
	q := storage.MergeQuery{ProfileSelector: ps, SpanIDs: r.Form[pfx+"span_id"]}
	for _, id := range q.SpanIDs {
		if !validSpanID(id) {
			return q, badf("%sspan_id %q: want 16 hex digits", pfx, id)
		}
	}
	return q, nil
}

// mergeOf merges a selection. Profiles of different types cannot be
// merged: a selection without a type must hold a single one.
func (a *API) mergeOf(ctx context.Context, q storage.MergeQuery) (*profile.Profile, error) {
	if q.Type == "" {
		ts, err := a.r.ProfileTypes(ctx, q.ProfileSelector)
		if err != nil {
			return nil, err
		}
		if len(ts) > 1 {
			names := make([]string, len(ts))
			for i, t := range ts {
				names[i] = t.Type
			}
			return nil, badf("the selection holds profiles of types %s, which cannot be merged: name one, as in %s{…}", strings.Join(names, ", "), names[0])
		}
	}
	return a.r.Merge(ctx, q)
}

func validSpanID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// fail answers an error: 400 for a bad request, 404 for an unknown
// profile, 500 otherwise; each counted.
func (a *API) fail(w http.ResponseWriter, api string, err error) {
	var br *badRequest
	if code, ok := querylimit.StatusOf(err); ok {
		a.failed.WithLabelValues(api).Inc()
		typ := "bad_data"
		if code == http.StatusUnprocessableEntity {
			typ = "execution"
		}
		writeJSONError(w, code, typ, err.Error())
		return
	}
	switch {
	case errors.As(err, &br):
		a.bad.WithLabelValues(api).Inc()
		writeJSONError(w, http.StatusBadRequest, "bad_data", err.Error())
	case errors.Is(err, storage.ErrProfileNotFound):
		writeJSONError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		a.failed.WithLabelValues(api).Inc()
		writeJSONError(w, http.StatusServiceUnavailable, "timeout", err.Error())
	default:
		a.failed.WithLabelValues(api).Inc()
		a.log.Error("profile query failed", "api", api, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func writeJSONError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": msg})
}

func writeJSON(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func writePprof(w http.ResponseWriter, p *profile.Profile, name string) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".pb.gz"))
	_ = p.Write(w) // gzipped
}

func (a *API) merge(r *http.Request) (*profile.Profile, string, error) {
	q, err := a.mergeQuery(r, "")
	if err != nil {
		return nil, "", err
	}
	p, err := a.mergeOf(r.Context(), q)
	return p, "merge", err
}

// diffProfiles returns target − base as one profile, pprof's -diff_base
// convention: the base's values scaled by −1 and merged in, samples that
// cancel out dropped.
func diffProfiles(target, base *profile.Profile) (*profile.Profile, error) {
	if len(base.Sample) == 0 && len(base.SampleType) == 0 {
		return target, nil
	}
	if len(target.Sample) == 0 && len(target.SampleType) == 0 {
		target = base.Copy()
		target.Sample = nil
	}
	base.Scale(-1)
	p, err := profile.Merge([]*profile.Profile{target, base})
	if err != nil {
		return nil, badf("cannot diff the two selections: %v", err)
	}
	kept := p.Sample[:0]
	for _, s := range p.Sample {
		for _, v := range s.Value {
			if v != 0 {
				kept = append(kept, s)
				break
			}
		}
	}
	p.Sample = kept
	return p.Compact(), nil
}

func (a *API) diff(r *http.Request) (*profile.Profile, string, error) {
	tq, err := a.mergeQuery(r, "")
	if err != nil {
		return nil, "", err
	}
	bq, err := a.mergeQuery(r, "base_")
	if err != nil {
		return nil, "", err
	}
	target, err := a.mergeOf(r.Context(), tq)
	if err != nil {
		return nil, "", err
	}
	base, err := a.mergeOf(r.Context(), bq)
	if err != nil {
		return nil, "", err
	}
	p, err := diffProfiles(target, base)
	return p, "diff", err
}

// sampleIndex returns the index of sample type name in p ("" takes the
// default sample type, else the last one, as pprof does).
func sampleIndex(p *profile.Profile, name string) (int, error) {
	if name == "" {
		name = p.DefaultSampleType
	}
	if name == "" {
		return len(p.SampleType) - 1, nil
	}
	var have []string
	for i, st := range p.SampleType {
		if st.Type == name {
			return i, nil
		}
		have = append(have, st.Type)
	}
	return 0, badf("sample type %q: the selection has %q", name, have)
}

// TopFunction is one line of the top functions.
type TopFunction struct {
	Name string `json:"name"`
	Flat int64  `json:"flat"`
	Cum  int64  `json:"cum"`
}

// Top is the answer of the top endpoint.
type Top struct {
	SampleType string        `json:"sample_type"`
	Unit       string        `json:"unit"`
	Total      int64         `json:"total"`
	Functions  []TopFunction `json:"functions"`
}

// topFunctions ranks the functions of p by flat value of sample type idx,
// then cumulative value, then name.
func topFunctions(p *profile.Profile, idx, limit int) Top {
	t := Top{}
	if idx < 0 || idx >= len(p.SampleType) {
		t.Functions = []TopFunction{}
		return t
	}
	t.SampleType, t.Unit = p.SampleType[idx].Type, p.SampleType[idx].Unit
	flat, cum := map[string]int64{}, map[string]int64{}
	var buf []string
	seen := map[string]bool{}
	for _, s := range p.Sample {
		v := s.Value[idx]
		if v == 0 {
			continue
		}
		t.Total += v
		buf = stackNames(s, buf)
		if len(buf) > 0 {
			flat[buf[len(buf)-1]] += v
		}
		clear(seen)
		for _, fn := range buf {
			if !seen[fn] {
				seen[fn] = true
				cum[fn] += v
			}
		}
	}
	for fn, c := range cum {
		t.Functions = append(t.Functions, TopFunction{Name: fn, Flat: flat[fn], Cum: c})
	}
	sort.Slice(t.Functions, func(i, j int) bool {
		x, y := t.Functions[i], t.Functions[j]
		if x.Flat != y.Flat {
			return x.Flat > y.Flat
		}
		if x.Cum != y.Cum {
			return x.Cum > y.Cum
		}
		return x.Name < y.Name
	})
	if len(t.Functions) > limit {
		t.Functions = t.Functions[:limit]
	}
	if t.Functions == nil {
		t.Functions = []TopFunction{}
	}
	return t
}

const maxTopLimit = 10000

func intParam(r *http.Request, name string, def, max int) (int, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badf("invalid %s %q: want a positive integer", name, v)
	}
	if n > max {
		return 0, badf("%s %d is over the limit of %d", name, n, max)
	}
	return n, nil
}

func (a *API) top(r *http.Request, sel storage.ProfileSelector) (any, error) {
	q, err := a.mergeQuery(r, "")
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit", 20, maxTopLimit)
	if err != nil {
		return nil, err
	}
	p, err := a.mergeOf(r.Context(), q)
	if err != nil {
		return nil, err
	}
	idx := -1
	if len(p.SampleType) > 0 {
		if idx, err = sampleIndex(p, r.FormValue("sample_type")); err != nil {
			return nil, err
		}
	}
	return topFunctions(p, idx, limit), nil
}

type jsonValueType struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
}

type jsonType struct {
	Type              string          `json:"type"`
	SampleTypes       []jsonValueType `json:"sample_types"`
	DefaultSampleType string          `json:"default_sample_type,omitempty"`
	PeriodType        jsonValueType   `json:"period_type"`
}

func jsonValueTypes(vs []storage.ValueType) []jsonValueType {
	out := make([]jsonValueType, len(vs))
	for i, v := range vs {
		out[i] = jsonValueType(v)
	}
	return out
}

func (a *API) types(r *http.Request, sel storage.ProfileSelector) (any, error) {
	ts, err := a.r.ProfileTypes(r.Context(), sel)
	out := make([]jsonType, 0, len(ts))
	for _, t := range ts {
		out = append(out, jsonType{Type: t.Type, SampleTypes: jsonValueTypes(t.SampleTypes), DefaultSampleType: t.DefaultSampleType, PeriodType: jsonValueType(t.PeriodType)})
	}
	return out, err
}

func (a *API) labels(r *http.Request, sel storage.ProfileSelector) (any, error) {
	names, err := a.r.LabelNames(r.Context(), sel)
	return nonNil(names), err
}

func (a *API) labelValues(r *http.Request, sel storage.ProfileSelector) (any, error) {
	vals, err := a.r.LabelValues(r.Context(), r.PathValue("name"), sel)
	return nonNil(vals), err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type jsonSeries struct {
	Type   string            `json:"type"`
	Labels map[string]string `json:"labels"`
}

func (a *API) series(r *http.Request, sel storage.ProfileSelector) (any, error) {
	ss, err := a.r.Series(r.Context(), sel)
	out := make([]jsonSeries, 0, len(ss))
	for _, s := range ss {
		out = append(out, jsonSeries{Type: s.Type, Labels: s.Labels.Map()})
	}
	return out, err
}

type jsonProfile struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	Labels      map[string]string `json:"labels"`
	Time        time.Time         `json:"time"`
	Duration    float64           `json:"duration_seconds"`
	SampleTypes []jsonValueType   `json:"sample_types"`
	Totals      []int64           `json:"totals"`
}

const maxListLimit = 10000

func (a *API) list(r *http.Request, sel storage.ProfileSelector) (any, error) {
	limit, err := intParam(r, "limit", 1000, maxListLimit)
	if err != nil {
		return nil, err
	}
	ms, err := a.r.Profiles(r.Context(), sel, limit)
	out := make([]jsonProfile, 0, len(ms))
	for _, m := range ms {
		out = append(out, jsonProfile{ID: m.ID.String(), Type: m.Type, Labels: m.Labels.Map(), Time: time.Unix(0, m.TimeNanos).UTC(),
			Duration: float64(m.DurationNanos) / 1e9, SampleTypes: jsonValueTypes(m.SampleTypes), Totals: m.Totals})
	}
	return out, err
}

// parseProfileID accepts 32 hex digits, with or without the dashes of a
// UUID (Pyroscope writes profile ids as UUIDs).
func parseProfileID(s string) (model.RecordID, error) {
	var id model.RecordID
	hexd := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] == '-' && len(s) == 36 {
			continue
		}
		hexd = append(hexd, s[i])
	}
	if len(hexd) != 32 {
		return id, badf("profile id %q: want 32 hex digits", s)
	}
	for i := 0; i < 16; i++ {
		hi, ok1 := unhex(hexd[2*i])
		lo, ok2 := unhex(hexd[2*i+1])
		if !ok1 || !ok2 {
			return id, badf("profile id %q: want 32 hex digits", s)
		}
		id[i] = hi<<4 | lo
	}
	return id, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// uuidString writes a profile id as a UUID, as Pyroscope's exemplars do.
func uuidString(id model.RecordID) string {
	h := id.String()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (a *API) profile(r *http.Request) (*profile.Profile, string, error) {
	id, err := parseProfileID(r.PathValue("id"))
	if err != nil {
		return nil, "", err
	}
	p, _, err := a.r.Profile(r.Context(), id)
	return p, id.String(), err
}
