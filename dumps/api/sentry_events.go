package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/dumps"
	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Sentry's events (Discover) and events-stats endpoints over the events
// of a query: the store selects them (project, environment, time, search
// terms); fields, aggregates and groups are computed here over at most
// MaxScanEvents of them, the newest.

// eventQuery builds the store query of an events request: project,
// environment, start/end/statsPeriod and the search in query. none is
// true when the search can match no dump (event.type:transaction).
func (a *API) eventQuery(r *http.Request) (storage.EventQuery, error) {
	q := storage.EventQuery{Projects: projects(r), Environments: values(r, "environment")}
	var err error
	if q.Start, q.End, err = a.timeRange(r); err != nil {
		return q, err
	}
	terms, text, err := parseSearch(r.Form.Get("query"))
	if err != nil {
		return q, err
	}
	q.Text = text
	for _, t := range terms {
		if t.Negated {
			return q, badParam("query", "negated term !%s:%s is not supported", t.Key, t.Value)
		}
		switch key := t.Key; key {
		case "event.type":
			if t.Value != "error" && t.Value != "default" {
				return q, badParam("query", "event.type:%s: Vigil holds error events only (event.type:error)", t.Value)
			}
		case "issue", "issue.id":
			q.IssueID = t.Value
		case "project":
			q.Services = append(q.Services, t.Value)
		case "message":
			q.Text = strings.TrimSpace(q.Text + " " + t.Value)
		default:
			if k, ok := strings.CutPrefix(key, "tags["); ok && strings.HasSuffix(k, "]") {
				key = strings.TrimSuffix(k, "]")
			}
			if q.Tags == nil {
				q.Tags = map[string]string{}
			}
			q.Tags[key] = t.Value
		}
	}
	return q, nil
}

// scan returns the events of q, newest first, at most MaxScanEvents.
func (a *API) scan(r *http.Request, q storage.EventQuery) ([]model.Dump, error) {
	var out []model.Dump
	for {
		q.Limit = min(storage.MaxDumpLimit, a.opts.MaxScanEvents-len(out))
		evs, next, err := a.store.FindEvents(r.Context(), q)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if next == "" || len(out) >= a.opts.MaxScanEvents {
			return out, nil
		}
		q.Cursor = next
	}
}

// field is one requested column: a plain field or an aggregate function.
type field struct {
	name string // as requested: "title", "count()", "count_unique(user)"
	fn   string // "", "count", "count_unique", "epm", "eps", "last_seen", "first_seen"
	arg  string
}

func parseField(s string) (field, error) {
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return field{name: s}, nil
	}
	f := field{name: s, fn: s[:open], arg: strings.TrimSpace(s[open+1 : len(s)-1])}
	switch f.fn {
	case "count", "epm", "eps", "last_seen", "first_seen", "failure_rate":
	case "count_unique":
		if f.arg == "" {
			return f, badParam("field", "%s: count_unique needs a field, as in count_unique(user)", s)
		}
	default:
		return f, badParam("field", "%s: the functions Vigil computes are count(), count_unique(field), epm(), eps(), last_seen(), first_seen()", s)
	}
	return f, nil
}

// value returns a plain field of an event, as Sentry's Discover names
// them; an unknown name is read as a tag.
func value(d *model.Dump, name string) any {
	switch name {
	case "id":
		return d.EventID
	case "title":
		return dumps.Title(d)
	case "message":
		if d.Message != "" {
			return d.Message
		}
		return dumps.Title(d)
	case "culprit":
		return dumps.Culprit(d)
	case "project", "project.name":
		return d.Service
	case "project.id":
		if n, err := strconv.ParseInt(d.Project, 10, 64); err == nil {
			return n
		}
		return d.Project
	case "timestamp":
		return time.Unix(0, d.Timestamp).UTC().Format(time.RFC3339)
	case "event.type":
		return "error"
	case "issue", "issue.id":
		return d.IssueID
	case "trace", "trace.id":
		return d.TraceID
	case "trace.span":
		return d.SpanID
	case "release":
		return d.Release
	case "environment":
		return d.Environment
	case "level":
		return d.Level
	case "platform":
		return d.Platform
	case "transaction":
		return d.Transaction
	case "logger":
		return d.Logger
	case "dist":
		return d.Dist
	case "server_name", "host":
		return d.ServerName
	case "service":
		return d.Service
	case "error.type", "error.value", "error.mechanism":
		var vs []string
		for _, e := range d.Exceptions {
			vs = append(vs, map[string]string{"error.type": e.Type, "error.value": e.Value, "error.mechanism": e.Mechanism}[name])
		}
		return vs
	case "sdk.name", "sdk.version":
		n, v, _ := strings.Cut(d.SDK, "/")
		if name == "sdk.name" {
			return n
		}
		return v
	}
	key := name
	if k, ok := strings.CutPrefix(name, "tags["); ok && strings.HasSuffix(k, "]") {
		key = strings.TrimSuffix(k, "]")
	}
	for _, t := range d.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return nil
}

// fieldType is the Discover type of a field, for meta.fields.
func fieldType(f field) string {
	switch {
	case f.fn == "count" || f.fn == "count_unique":
		return "integer"
	case f.fn == "epm" || f.fn == "eps" || f.fn == "failure_rate":
		return "rate"
	case f.fn != "" || f.name == "timestamp":
		return "date"
	case f.name == "project.id":
		return "integer"
	}
	return "string"
}

// aggregate computes f over a group of events in a range of span ns.
func aggregate(f field, evs []*model.Dump, span int64) any {
	switch f.fn {
	case "count":
		return len(evs)
	case "count_unique":
		seen := map[string]bool{}
		for _, d := range evs {
			if v := value(d, f.arg); v != nil && v != "" {
				b, _ := json.Marshal(v)
				seen[string(b)] = true
			}
		}
		return len(seen)
	case "epm", "eps":
		if span <= 0 {
			return nil
		}
		unit := float64(time.Minute)
		if f.fn == "eps" {
			unit = float64(time.Second)
		}
		return float64(len(evs)) / (float64(span) / unit)
	case "last_seen", "first_seen":
		t := evs[0].Timestamp
		for _, d := range evs {
			if f.fn == "last_seen" && d.Timestamp > t || f.fn == "first_seen" && d.Timestamp < t {
				t = d.Timestamp
			}
		}
		return time.Unix(0, t).UTC().Format(time.RFC3339)
	}
	return nil // failure_rate: Vigil has no transactions
}

// rows computes the rows of fields over evs: one per event without
// aggregates, else one per distinct combination of the plain fields.
func rows(fields []field, evs []model.Dump, span int64) []map[string]any {
	hasAgg := false
	for _, f := range fields {
		hasAgg = hasAgg || f.fn != ""
	}
	var out []map[string]any
	if !hasAgg {
		for i := range evs {
			row := make(map[string]any, len(fields))
			for _, f := range fields {
				row[f.name] = value(&evs[i], f.name)
			}
			out = append(out, row)
		}
		return out
	}
	groups := map[string][]*model.Dump{}
	var order []string
	for i := range evs {
		var key []any
		for _, f := range fields {
			if f.fn == "" {
				key = append(key, value(&evs[i], f.name))
			}
		}
		b, _ := json.Marshal(key)
		if groups[string(b)] == nil {
			order = append(order, string(b))
		}
		groups[string(b)] = append(groups[string(b)], &evs[i])
	}
	for _, k := range order {
		g := groups[k]
		row := make(map[string]any, len(fields))
		for _, f := range fields {
			if f.fn == "" {
				row[f.name] = value(g[0], f.name)
			} else {
				row[f.name] = aggregate(f, g, span)
			}
		}
		out = append(out, row)
	}
	return out
}

// less orders two field values: numbers, then strings, nil last.
func less(a, b any) bool {
	switch x := a.(type) {
	case int:
		y, ok := b.(int)
		return ok && x < y
	case int64:
		y, ok := b.(int64)
		return ok && x < y
	case float64:
		y, ok := b.(float64)
		return ok && x < y
	case string:
		y, ok := b.(string)
		return ok && x < y
	}
	return false
}

func (a *API) sentryEvents(w http.ResponseWriter, r *http.Request) error {
	names := r.Form["field"]
	if len(names) == 0 {
		return badParam("field", "at least one field is needed, such as field=id&field=title")
	}
	var fields []field
	for _, n := range names {
		f, err := parseField(n)
		if err != nil {
			return err
		}
		fields = append(fields, f)
	}
	sortBy := r.Form.Get("sort")
	desc := strings.HasPrefix(sortBy, "-")
	sortBy = strings.TrimPrefix(sortBy, "-")
	if sortBy != "" && !contains(names, sortBy) {
		return badParam("sort", "%q is not one of the requested fields", sortBy)
	}
	limit, err := parseLimit(r, "per_page", 50, 100)
	if err != nil {
		return err
	}
	cur, err := storeCursor(r.Form.Get("cursor"))
	if err != nil {
		return err
	}
	offset := 0
	if cur != "" {
		if offset, err = strconv.Atoi(cur); err != nil || offset < 0 {
			return badParam("cursor", "%q: not a cursor of this API", r.Form.Get("cursor"))
		}
	}
	q, err := a.eventQuery(r)
	if err != nil {
		return err
	}
	evs, err := a.scan(r, q)
	if err != nil {
		return err
	}
	span := q.End - q.Start
	if q.Start == 0 || q.End == 0 {
		span = 0
	}
	data := rows(fields, evs, span)
	if sortBy != "" {
		sort.SliceStable(data, func(i, j int) bool {
			if desc {
				return less(data[j][sortBy], data[i][sortBy])
			}
			return less(data[i][sortBy], data[j][sortBy])
		})
	}
	next := ""
	if offset >= len(data) {
		data = nil
	} else {
		end := min(len(data), offset+limit)
		if end < len(data) {
			next = strconv.Itoa(end)
		}
		data = data[offset:end]
	}
	if data == nil {
		data = []map[string]any{}
	}
	meta := map[string]string{}
	for _, f := range fields {
		meta[f.name] = fieldType(f)
	}
	setLink(w, r, next)
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]any{"fields": meta, "units": map[string]any{}}})
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
