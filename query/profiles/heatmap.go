package profiles

import (
	"context"
	"errors"
	"math"
	"sort"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Heatmaps: each profile of the selection is a point (its time, its total
// of the sample type); points are counted in cells of one step by one of
// heatmapBuckets value buckets, evenly spaced between the smallest and the
// largest total of the range, as Pyroscope's heatmaps are.
const (
	heatmapBuckets     = 20
	maxHeatmapProfiles = 100000
)

type heatCell struct {
	count    int32
	exemplar *storage.ProfileMeta
	value    int64
}

type heatSeries struct {
	labels model.Labels
	cells  map[[2]int64]*heatCell // (step start ms, bucket)
	sum    int64
}

func (q *querier) SelectHeatmap(ctx context.Context, req *connect.Request[querierv1.SelectHeatmapRequest]) (*connect.Response[querierv1.SelectHeatmapResponse], error) {
	m := req.Msg
	if m.QueryType == querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_SPAN || m.ExemplarType == typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("span heatmaps are not supported by Vigil: ask for individual profiles"))
	}
	if m.ProfileTypeID == "" {
		return nil, badf("profile_typeID is empty")
	}
	ps, err := q.selection([]string{m.LabelSelector}, m.Start, m.End, m.ProfileTypeID)
	if err != nil {
		return nil, err
	}
	if m.Step <= 0 || m.Step > 1e9 || math.IsNaN(m.Step) {
		return nil, badf("step %v: want a positive number of seconds", m.Step)
	}
	resp := &querierv1.SelectHeatmapResponse{Series: []*typesv1.HeatmapSeries{}}
	if ps.empty {
		return connect.NewResponse(resp), nil
	}
	metas, err := q.a.r.Profiles(ctx, ps.ProfileSelector, maxHeatmapProfiles+1)
	if err != nil {
		return nil, err
	}
	if len(metas) > maxHeatmapProfiles {
		return nil, badf("the range holds more than %d profiles, the limit of a heatmap: narrow it", maxHeatmapProfiles)
	}
	type point struct {
		meta  *storage.ProfileMeta
		value int64
	}
	points := make([]point, 0, len(metas))
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range metas {
		v, ok := metaTotal(&metas[i], ps.sampleType)
		if !ok {
			continue
		}
		points = append(points, point{&metas[i], v})
		lo, hi = min(lo, v), max(hi, v)
	}
	if len(points) == 0 {
		return connect.NewResponse(resp), nil
	}
	if hi == lo {
		hi = lo + 1
	}
	step := int64(m.Step * 1000)
	if step <= 0 {
		step = 1
	}
	groupBy := make([]string, len(m.GroupBy))
	for i, g := range m.GroupBy {
		groupBy[i] = fromPyroLabelName(g)
	}
	series := map[string]*heatSeries{}
	for _, p := range points {
		ls := p.meta.Labels
		if len(groupBy) > 0 {
			ls = nil
			for _, g := range groupBy {
				if v := p.meta.Labels.Get(g); v != "" {
					ls = append(ls, model.Label{Name: g, Value: v})
				}
			}
		}
		key := ls.String()
		s := series[key]
		if s == nil {
			s = &heatSeries{labels: ls, cells: map[[2]int64]*heatCell{}}
			series[key] = s
		}
		ts := p.meta.TimeNanos / 1e6
		slot := m.Start + (ts-m.Start)/step*step
		b := int64(float64(p.value-lo) / float64(hi-lo) * heatmapBuckets)
		b = min(max(b, 0), heatmapBuckets-1)
		c := s.cells[[2]int64{slot, b}]
		if c == nil {
			c = &heatCell{}
			s.cells[[2]int64{slot, b}] = c
		}
		c.count++
		if c.exemplar == nil || p.value > c.value {
			c.exemplar, c.value = p.meta, p.value
		}
		s.sum += p.value
	}
	ordered := make([]*heatSeries, 0, len(series))
	for _, s := range series {
		ordered = append(ordered, s)
	}
	sort.Slice(ordered, func(i, j int) bool {
		if ordered[i].sum != ordered[j].sum {
			return ordered[i].sum > ordered[j].sum
		}
		return ordered[i].labels.String() < ordered[j].labels.String()
	})
	if m.Limit != nil && *m.Limit > 0 && int64(len(ordered)) > *m.Limit {
		ordered = ordered[:*m.Limit]
	}
	yMin := make([]float64, heatmapBuckets)
	for i := range yMin {
		yMin[i] = float64(lo) + float64(i)*float64(hi-lo)/heatmapBuckets
	}
	exemplars := m.ExemplarType == typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL
	for _, s := range ordered {
		slots := map[int64]*typesv1.HeatmapSlot{}
		for k, c := range s.cells {
			sl := slots[k[0]]
			if sl == nil {
				sl = &typesv1.HeatmapSlot{Timestamp: k[0], YMin: yMin, Counts: make([]int32, heatmapBuckets)}
				slots[k[0]] = sl
			}
			sl.Counts[k[1]] = c.count
			if exemplars {
				e := c.exemplar
				sl.Exemplars = append(sl.Exemplars, &typesv1.Exemplar{Timestamp: e.TimeNanos / 1e6, ProfileId: uuidString(e.ID), Value: c.value, Labels: toPyroLabels(e.Labels)})
			}
		}
		hs := &typesv1.HeatmapSeries{Labels: toPyroLabels(s.labels)}
		for _, sl := range slots {
			sort.Slice(sl.Exemplars, func(i, j int) bool { return sl.Exemplars[i].Value < sl.Exemplars[j].Value })
			hs.Slots = append(hs.Slots, sl)
		}
		sort.Slice(hs.Slots, func(i, j int) bool { return hs.Slots[i].Timestamp < hs.Slots[j].Timestamp })
		resp.Series = append(resp.Series, hs)
	}
	return connect.NewResponse(resp), nil
}

// metaTotal is a profile's total of sample type st ("" its last one).
func metaTotal(m *storage.ProfileMeta, st string) (int64, bool) {
	if len(m.Totals) == 0 || len(m.Totals) != len(m.SampleTypes) {
		return 0, false
	}
	if st == "" {
		return m.Totals[len(m.Totals)-1], true
	}
	for i, t := range m.SampleTypes {
		if t.Type == st {
			return m.Totals[i], true
		}
	}
	return 0, false
}
