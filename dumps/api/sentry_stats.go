package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/model"
)

// maxStatsBuckets bounds the intervals of one events-stats answer.
const maxStatsBuckets = 10000

// sentryEventsStats is Sentry's events-stats: per interval, the yAxis
// functions of the events, for the top topEvents groups of the fields
// that are not in yAxis, or for all events. A series is {"data": [[unix
// seconds, [{"count": value}]], …]}; one series is the whole answer, more
// are an object keyed by yAxis, by group, or by group then yAxis, each
// with its "order".
func (a *API) sentryEventsStats(w http.ResponseWriter, r *http.Request) error {
	yNames := r.Form["yAxis"]
	if len(yNames) == 0 {
		yNames = []string{"count()"}
	}
	var ys []field
	for _, n := range yNames {
		f, err := parseField(n)
		if err != nil {
			return err
		}
		if f.fn != "count" && f.fn != "count_unique" && f.fn != "epm" && f.fn != "eps" {
			return badParam("yAxis", "%s: a series can be count(), count_unique(field), epm() or eps()", n)
		}
		ys = append(ys, f)
	}
	var groups []string
	for _, n := range r.Form["field"] {
		if f, err := parseField(n); err == nil && f.fn == "" && !contains(groups, n) {
			groups = append(groups, n)
		}
	}
	top, err := parseLimit(r, "topEvents", 5, 10)
	if err != nil {
		return err
	}
	q, err := a.eventQuery(r)
	if err != nil {
		return err
	}
	if q.Start == 0 || q.End == 0 {
		q.End = a.opts.now().UnixNano()
		q.Start = q.End - int64(24*time.Hour)
	}
	step := int64(time.Hour)
	if v := r.Form.Get("interval"); v != "" {
		d, err := parseDuration("interval", v)
		if err != nil {
			return err
		}
		step = int64(d)
	}
	q.Start -= q.Start % step
	n := (q.End - q.Start + step - 1) / step
	if n > maxStatsBuckets {
		return badParam("interval", "%s makes %d intervals from start to end; at most %d: widen the interval", r.Form.Get("interval"), n, maxStatsBuckets)
	}
	q.End = q.Start + n*step

	// The common case, counts of all events, is counted by the store.
	if len(groups) == 0 && len(ys) == 1 && ys[0].fn == "count" {
		counts, err := a.store.CountEvents(r.Context(), q, step)
		if err != nil {
			return err
		}
		vals := make([]any, len(counts))
		for i, c := range counts {
			vals[i] = c
		}
		httpserver.WriteJSON(w, http.StatusOK, series(q.Start, step, vals, -1))
		return nil
	}
	evs, err := a.scan(r, q)
	if err != nil {
		return err
	}
	bucket := func(set []*model.Dump) map[string]any {
		out := map[string]any{}
		by := make([][]*model.Dump, n)
		for _, d := range set {
			if i := (d.Timestamp - q.Start) / step; i >= 0 && i < n {
				by[i] = append(by[i], d)
			}
		}
		for o, y := range ys {
			vals := make([]any, n)
			for i := range by {
				switch {
				case len(by[i]) > 0:
					vals[i] = aggregate(y, by[i], step)
				case y.fn == "epm" || y.fn == "eps":
					vals[i] = 0.0
				default:
					vals[i] = 0
				}
			}
			out[y.name] = series(q.Start, step, vals, o)
		}
		if len(ys) == 1 {
			return out[ys[0].name].(map[string]any)
		}
		return out
	}
	all := make([]*model.Dump, len(evs))
	for i := range evs {
		all[i] = &evs[i]
	}
	if len(groups) == 0 {
		res := bucket(all)
		delete(res, "order")
		httpserver.WriteJSON(w, http.StatusOK, res)
		return nil
	}
	byGroup := map[string][]*model.Dump{}
	for _, d := range all {
		var key string
		for i, g := range groups {
			if i > 0 {
				key += ","
			}
			key += str(value(d, g))
		}
		byGroup[key] = append(byGroup[key], d)
	}
	keys := make([]string, 0, len(byGroup))
	for k := range byGroup {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if a, b := len(byGroup[keys[i]]), len(byGroup[keys[j]]); a != b {
			return a > b
		}
		return keys[i] < keys[j]
	})
	res := map[string]any{}
	for o, k := range keys[:min(top, len(keys))] {
		s := bucket(byGroup[k])
		s["order"] = o
		res[k] = s
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
	return nil
}

// series is one events-stats series; order < 0 leaves "order" out.
func series(start, step int64, vals []any, order int) map[string]any {
	data := make([][]any, len(vals))
	for i, v := range vals {
		data[i] = []any{(start + int64(i)*step) / 1e9, []map[string]any{{"count": v}}}
	}
	s := map[string]any{"data": data, "start": start / 1e9, "end": (start + int64(len(vals))*step) / 1e9}
	if order >= 0 {
		s["order"] = order
	}
	return s
}

// str renders a field value as a group name.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
