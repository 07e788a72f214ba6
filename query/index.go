package query

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Loki's index endpoints: index/stats (Grafana's query-size hint) and
// index/volume, index/volume_range (the Logs Drilldown landing page).
// Their figures are exact (bytes are line bytes, as Loki's). A store that
// is a storage.StreamStatsReader answers them from per-stream statistics
// without reading lines; lines are read (scanVolumes) from other stores
// and for selectors on detected_level, which is derived from each line.

// streamVolume is what one stream holds in a range: entries and line
// bytes, per step bucket for volume_range.
type streamVolume struct {
	labels  model.Labels
	entries int64
	bytes   []int64 // one per bucket
}

// volumes sums the lines matching ms in [start, end) per stream, from
// the store's statistics when it keeps them.
func (a *API) volumes(ctx context.Context, ms []*model.LabelMatcher, start, end, step int64) ([]*streamVolume, error) {
	sr, ok := a.store.LogReader.(storage.StreamStatsReader)
	store, perLine := storeMatchers(ms)
	if !ok || len(perLine) > 0 {
		return a.scanVolumes(ctx, ms, start, end, step)
	}
	stats, err := sr.StreamStats(ctx, store, start, end, step)
	if err != nil {
		return nil, err
	}
	out := make([]*streamVolume, 0, len(stats))
	for _, st := range stats {
		v := &streamVolume{labels: withConventions(nil, st.Labels, ""), bytes: st.Bytes}
		for _, n := range st.Rows {
			v.entries += n
		}
		out = append(out, v)
	}
	return out, nil
}

// scanVolumes reads the lines matching ms in [start, end) and sums them
// per stream; with step > 0 bytes are bucketed by step from start.
func (a *API) scanVolumes(ctx context.Context, ms []*model.LabelMatcher, start, end, step int64) ([]*streamVolume, error) {
	buckets := 1
	if step > 0 {
		buckets = max(int((end-start+step-1)/step), 1)
	}
	byStream := map[string]*streamVolume{}
	var key []byte
	p := storage.SelectParams{Start: start, End: end, Matchers: ms}
	err := a.store.selectRows(ctx, p, false, func(r *storage.Row) bool {
		key = appendLabelsKey(key[:0], r.Labels)
		v := byStream[string(key)]
		if v == nil {
			ls := make(model.Labels, 0, len(r.Labels))
			for _, l := range r.Labels {
				if l.Name != model.LabelDetectedLevel {
					ls = append(ls, l)
				}
			}
			v = &streamVolume{labels: ls, bytes: make([]int64, buckets)}
			byStream[string(key)] = v
		}
		b := 0
		if step > 0 {
			b = min(int((r.Timestamp-start)/step), buckets-1)
		}
		v.entries++
		v.bytes[b] += int64(len(r.Message))
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]*streamVolume, 0, len(byStream))
	for _, v := range byStream {
		out = append(out, v)
	}
	return out, nil
}

// indexStats answers GET /loki/api/v1/index/stats: {"streams","chunks",
// "bytes","entries"} of the lines a selector matches. Vigil stores a
// stream's lines of a range as one unit, so chunks counts streams.
func (a *API) indexStats(w http.ResponseWriter, r *http.Request) error {
	start, end, err := timeRange(r, time.Now().UnixNano())
	if err != nil {
		return err
	}
	sel, err := requiredSelector(r)
	if err != nil {
		return err
	}
	vols, err := a.volumes(r.Context(), sel, start, end+1, 0)
	if err != nil {
		return err
	}
	streams := map[string]bool{}
	var entries, bytes int64
	var key []byte
	for _, v := range vols {
		key = appendLabelsKey(key[:0], v.labels)
		streams[string(key)] = true
		entries += v.entries
		bytes += v.bytes[0]
	}
	writeJSON(w, map[string]int64{"streams": int64(len(streams)), "chunks": int64(len(streams)), "bytes": bytes, "entries": entries})
	return nil
}

// requiredSelector parses the query parameter as a stream selector.
func requiredSelector(r *http.Request) ([]*model.LabelMatcher, error) {
	q := r.FormValue("query")
	if q == "" {
		return nil, badParam("query parameter is required")
	}
	return selectorParam(q)
}

// volumeParams are index/volume's parameters beyond the range.
type volumeParams struct {
	matchers    []*model.LabelMatcher
	limit       int
	targets     []string
	byLabelName bool // aggregateBy=labels
}

const defaultVolumeLimit = 100

func parseVolumeParams(r *http.Request) (volumeParams, error) {
	var p volumeParams
	var err error
	if p.matchers, err = requiredSelector(r); err != nil {
		return p, err
	}
	p.limit = defaultVolumeLimit
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, badParam("limit must be a positive value")
		}
		if n > 0 {
			p.limit = n
		}
	}
	if v := r.FormValue("targetLabels"); v != "" {
		p.targets = strings.Split(v, ",")
	}
	switch r.FormValue("aggregateBy") {
	case "", "series":
	case "labels":
		p.byLabelName = true
	default:
		return p, badParam("invalid aggregation option %q: want series or labels", r.FormValue("aggregateBy"))
	}
	return p, nil
}

// volumeSeries is one result of index/volume: its name and bytes per
// bucket.
type volumeSeries struct {
	labels model.Labels
	bytes  []int64
}

// aggregateVolumes groups stream volumes as Loki does. By series: by the
// target labels, or without targets by the labels the selector names. By
// labels: one result per label name ({name=""}), the bytes of the streams
// that have it. The limit keeps the largest.
func aggregateVolumes(vols []*streamVolume, p volumeParams) []volumeSeries {
	by := p.targets
	if len(by) == 0 && !p.byLabelName {
		for _, m := range p.matchers {
			by = append(by, m.Name)
		}
	}
	groups := map[string]*volumeSeries{}
	var key []byte
	add := func(ls model.Labels, bytes []int64) {
		key = appendLabelsKey(key[:0], ls)
		g := groups[string(key)]
		if g == nil {
			g = &volumeSeries{labels: ls, bytes: make([]int64, len(bytes))}
			groups[string(key)] = g
		}
		for i, b := range bytes {
			g.bytes[i] += b
		}
	}
	for _, v := range vols {
		if p.byLabelName {
			for _, l := range v.labels {
				if len(p.targets) == 0 || slices.Contains(p.targets, l.Name) {
					add(model.Labels{{Name: l.Name}}, v.bytes)
				}
			}
			continue
		}
		var ls model.Labels
		for _, l := range v.labels {
			if slices.Contains(by, l.Name) {
				ls = append(ls, l)
			}
		}
		add(ls, v.bytes)
	}
	out := make([]volumeSeries, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	total := func(s volumeSeries) (n int64) {
		for _, b := range s.bytes {
			n += b
		}
		return n
	}
	slices.SortFunc(out, func(a, b volumeSeries) int {
		if ta, tb := total(a), total(b); ta != tb {
			if ta > tb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.labels.String(), b.labels.String())
	})
	if len(out) > p.limit {
		out = out[:p.limit]
	}
	return out
}

// indexVolume answers GET /loki/api/v1/index/volume (a vector of bytes
// per group at the end of the range) and, when ranged, index/volume_range
// (bytes per group and step, each sample at the start of its step).
func (a *API) indexVolume(ranged bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		start, end, err := timeRange(r, time.Now().UnixNano())
		if err != nil {
			return err
		}
		p, err := parseVolumeParams(r)
		if err != nil {
			return err
		}
		var step int64
		if ranged {
			if step, err = parseStep(r, start, end); err != nil {
				return err
			}
		}
		vols, err := a.volumes(r.Context(), p.matchers, start, end+1, step)
		if err != nil {
			return err
		}
		resultType := "vector"
		var series []Series
		for _, g := range aggregateVolumes(vols, p) {
			s := Series{Labels: g.labels}
			if !ranged {
				s.Points = []Point{{T: end, V: float64(g.bytes[0])}}
			}
			for i, b := range g.bytes {
				if ranged && b > 0 {
					s.Points = append(s.Points, Point{T: start + int64(i)*step, V: float64(b)})
				}
			}
			if len(s.Points) > 1 {
				resultType = "matrix"
			}
			series = append(series, s)
		}
		writeVolume(w, resultType, series)
		return nil
	}
}

// writeVolume writes volumes as Loki's frontend does: a Prometheus-style
// vector, or a matrix when some group has several samples.
func writeVolume(w http.ResponseWriter, resultType string, series []Series) {
	type out struct {
		Metric map[string]string `json:"metric"`
		Value  *sample           `json:"value,omitempty"`
		Values []sample          `json:"values,omitempty"`
	}
	result := make([]out, 0, len(series))
	for _, s := range series {
		o := out{Metric: s.Labels.Map()}
		if resultType == "vector" {
			if len(s.Points) == 0 {
				continue
			}
			v := sample(s.Points[0])
			o.Value = &v
		} else {
			for _, p := range s.Points {
				o.Values = append(o.Values, sample(p))
			}
		}
		result = append(result, o)
	}
	writeData(w, map[string]any{"resultType": resultType, "result": result})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
