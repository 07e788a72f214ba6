package query

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/logfmt"
	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
)

// The endpoints Logs Drilldown calls besides the query ones:
// detected_labels, detected_fields, detected_field/{name}/values and
// drilldown-limits, with Loki 3's response shapes.

// detectedLabels answers GET /loki/api/v1/detected_labels:
// {"detectedLabels":[{"label","cardinality"}]}, the stream labels of the
// streams matching query (all streams when empty) with their number of
// values.
func (a *API) detectedLabels(w http.ResponseWriter, r *http.Request) error {
	start, end, ms, err := rangeSelector(r)
	if err != nil {
		return err
	}
	series, err := a.store.Series(r.Context(), start, end+1, ms)
	if err != nil {
		return err
	}
	values := map[string]map[string]bool{}
	for _, ls := range series {
		for _, l := range ls {
			if values[l.Name] == nil {
				values[l.Name] = map[string]bool{}
			}
			values[l.Name][l.Value] = true
		}
	}
	type detectedLabel struct {
		Label       string `json:"label"`
		Cardinality int    `json:"cardinality"`
	}
	out := []detectedLabel{}
	for name, vs := range values {
		out = append(out, detectedLabel{Label: name, Cardinality: len(vs)})
	}
	slices.SortFunc(out, func(a, b detectedLabel) int { return strings.Compare(a.Label, b.Label) })
	writeJSON(w, map[string]any{"detectedLabels": out})
	return nil
}

// detectedField is one field of detected_fields.
type detectedField struct {
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Cardinality int      `json:"cardinality"`
	Parsers     []string `json:"parsers"`  // null for structured metadata
	JSONPath    []string `json:"jsonPath"` // the keys of a json field
	values      map[string]bool
}

const (
	defaultDetectedLineLimit = 1000
	defaultDetectedLimit     = 1000
)

// sampleFields reads up to line_limit lines (newest first) of the query and
// collects their fields: the per-line metadata (trace_id, span_id,
// detected_level) and the keys of JSON and logfmt bodies, as Loki detects
// them.
// It also returns the limit parameter of the result.
func (a *API) sampleFields(r *http.Request) (map[string]*detectedField, int, error) {
	limit, err := parseDetectedLimit(r)
	if err != nil {
		return nil, 0, err
	}
	start, end, err := timeRange(r, time.Now().UnixNano())
	if err != nil {
		return nil, 0, err
	}
	q := r.FormValue("query")
	if q == "" {
		return nil, 0, badParam("query parameter is required")
	}
	sel, err := logql.ParseLogSelector(q)
	if err != nil {
		return nil, 0, err
	}
	lineLimit := defaultDetectedLineLimit
	if v := r.FormValue("line_limit"); v != "" {
		if lineLimit, err = strconv.Atoi(v); err != nil || lineLimit <= 0 {
			return nil, 0, badParam("invalid line_limit %q: want a positive integer", v)
		}
	}
	streams, _, err := a.engine.SelectLogs(r.Context(), sel, start, end+1, min(lineLimit, a.opts.MaxEntries), true)
	if err != nil {
		return nil, 0, err
	}
	fields := map[string]*detectedField{}
	add := func(name, value, parser string, path []string) {
		f := fields[name]
		if f == nil {
			f = &detectedField{Label: name, values: map[string]bool{}}
			if parser != "" {
				f.Parsers = []string{parser}
				f.JSONPath = path
			}
			fields[name] = f
		} else if parser != "" && !slices.Contains(f.Parsers, parser) {
			f.Parsers = append(f.Parsers, parser)
			slices.Sort(f.Parsers)
		}
		f.values[value] = true
	}
	for _, s := range streams {
		for _, l := range s.Labels {
			if categoryOf(l.Name) == categoryMetadata {
				add(l.Name, l.Value, "", nil)
			}
		}
		for _, e := range s.Entries {
			lineFields(e.Line, add)
		}
	}
	for _, f := range fields {
		f.Cardinality = len(f.values)
		f.Type = fieldType(f.values)
	}
	return fields, limit, nil
}

// lineFields calls add for each field of a JSON or logfmt line, named as
// Loki's parsers name them (nested JSON keys joined with _).
func lineFields(line string, add func(name, value, parser string, path []string)) {
	add0 := add
	add = func(name, value, parser string, path []string) {
		if name != "" { // an empty key names no field
			add0(name, value, parser, path)
		}
	}
	t := strings.TrimSpace(line)
	if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		v, err := fastjson.Parse(t)
		if err != nil {
			return
		}
		var walk func(prefix string, path []string, o *fastjson.Object)
		walk = func(prefix string, path []string, o *fastjson.Object) {
			o.Visit(func(k []byte, x *fastjson.Value) {
				name := prefix + sanitizeLabelName(string(k))
				p := append(slices.Clip(path), string(k))
				switch x.Type() {
				case fastjson.TypeObject:
					walk(name+"_", p, x.GetObject())
				case fastjson.TypeString:
					add(name, string(x.GetStringBytes()), "json", p)
				case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
					add(name, x.String(), "json", p)
				}
			})
		}
		if o, err := v.Object(); err == nil {
			walk("", nil, o)
		}
		return
	}
	if logfmt.IsLogfmt(line) {
		_ = logfmt.Parse(line, func(k, v string) {
			add(sanitizeLabelName(k), v, "logfmt", nil)
		})
	}
}

// sanitizeLabelName replaces what a label name may not hold with _.
func sanitizeLabelName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// fieldType names the type all values share, as Loki does: int, float,
// boolean, duration, bytes, else string.
func fieldType(values map[string]bool) string {
	all := func(ok func(string) bool) bool {
		for v := range values {
			if !ok(v) {
				return false
			}
		}
		return true
	}
	switch {
	case all(func(v string) bool { _, err := strconv.ParseInt(v, 10, 64); return err == nil }):
		return "int"
	case all(func(v string) bool { _, err := strconv.ParseFloat(v, 64); return err == nil }):
		return "float"
	case all(func(v string) bool { _, err := strconv.ParseBool(v); return err == nil }):
		return "boolean"
	case all(func(v string) bool { _, err := time.ParseDuration(v); return err == nil }):
		return "duration"
	case all(isBytes):
		return "bytes"
	}
	return "string"
}

// isBytes reports whether v is a size such as 10KB or 1.5 MiB.
func isBytes(v string) bool {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i <= 0 {
		return false
	}
	if _, err := strconv.ParseFloat(v[:i], 64); err != nil {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(v[i:])) {
	case "b", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "pib":
		return true
	}
	return false
}

func parseDetectedLimit(r *http.Request) (int, error) {
	v := r.FormValue("limit")
	if v == "" {
		return defaultDetectedLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badParam("invalid limit %q: want a positive integer", v)
	}
	return n, nil
}

// detectedFields answers GET /loki/api/v1/detected_fields:
// {"fields":[{"label","type","cardinality","parsers","jsonPath"}],"limit"}.
func (a *API) detectedFields(w http.ResponseWriter, r *http.Request) error {
	fields, limit, err := a.sampleFields(r)
	if err != nil {
		return err
	}
	out := make([]*detectedField, 0, len(fields))
	for _, f := range fields {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *detectedField) int { return strings.Compare(a.Label, b.Label) })
	if len(out) > limit {
		out = out[:limit]
	}
	writeJSON(w, map[string]any{"fields": out, "limit": limit})
	return nil
}

// detectedFieldValues answers GET /loki/api/v1/detected_field/{name}/values:
// {"values":[…],"limit"}, the values of a field among the sampled lines.
func (a *API) detectedFieldValues(w http.ResponseWriter, r *http.Request) error {
	fields, limit, err := a.sampleFields(r)
	if err != nil {
		return err
	}
	values := []string{}
	if f := fields[r.PathValue("name")]; f != nil {
		for v := range f.values {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	if len(values) > limit {
		values = values[:limit]
	}
	writeJSON(w, map[string]any{"values": values, "limit": limit})
	return nil
}

// drilldownLimits answers GET /loki/api/v1/drilldown-limits with the
// limits Logs Drilldown reads: which features this server has.
func (a *API) drilldownLimits(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, map[string]any{
		"limits": map[string]any{
			"discover_log_levels":         true,
			"discover_service_name":       []string{model.LabelService},
			"log_level_fields":            []string{"level", "severity", "lvl"},
			"max_entries_limit_per_query": a.opts.MaxEntries,
			"max_line_size_truncate":      true,
			"max_query_bytes_read":        "0B",
			"max_query_length":            "0s",
			"max_query_lookback":          "0s",
			"max_query_range":             "0s",
			"max_query_series":            a.engine.maxSeries,
			"metric_aggregation_enabled":  false,
			"pattern_persistence_enabled": false,
			"query_timeout":               a.opts.Timeout.String(),
			"retention_period":            "0s",
			"volume_enabled":              true,
			"volume_max_series":           a.engine.maxSeries,
		},
		"pattern_ingester_enabled": true, // /loki/api/v1/patterns is served
		"version":                  a.opts.Version,
	})
	return nil
}
