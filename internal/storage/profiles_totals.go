package storage

import (
	"slices"
	"sort"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
)

// SampleTypeIndex returns the index in sampleTypes of the sample type
// named name, or of the default sample type def when name is "" (the last
// one when def is "", as pprof does); -1 when there is no such type.
func SampleTypeIndex(sampleTypes []ValueType, def, name string) int {
	if name == "" {
		if name = def; name == "" {
			return len(sampleTypes) - 1
		}
	}
	for i, st := range sampleTypes {
		if st.Type == name {
			return i
		}
	}
	return -1
}

// TotalsAcc adds profiles' totals up into the points of a TotalsQuery, so
// that every profile store answers ProfileReader.Totals alike: a store
// calls Series for each series of the selection and Add for each of its
// profiles, then Totals.
type TotalsAcc struct {
	q      *TotalsQuery
	groups map[string]*totalsGroup
}

type totalsGroup struct {
	labels model.Labels
	points map[int64]*totalsPoint
}

type totalsPoint struct {
	sum, n int64
	ex     *ProfileExemplar
}

// TotalsSeries is one series of a TotalsAcc.
type TotalsSeries struct {
	g      *totalsGroup
	labels model.Labels
	q      *TotalsQuery
}

// NewTotalsAcc returns an empty accumulator for q.
func NewTotalsAcc(q *TotalsQuery) *TotalsAcc {
	return &TotalsAcc{q: q, groups: map[string]*totalsGroup{}}
}

// Series returns the series of labels ls, in its group (q.GroupBy). The
// accumulator keeps ls: the caller must not change it.
func (a *TotalsAcc) Series(ls model.Labels) *TotalsSeries {
	gl := ls
	if len(a.q.GroupBy) > 0 {
		gl = nil
		for _, name := range a.q.GroupBy {
			if v := ls.Get(name); v != "" {
				gl = append(gl, model.Label{Name: name, Value: v})
			}
		}
		sort.Slice(gl, func(i, j int) bool { return gl[i].Name < gl[j].Name })
	}
	var b strings.Builder
	for _, l := range gl {
		b.WriteByte(0)
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
	}
	k := b.String()
	g, ok := a.groups[k]
	if !ok {
		g = &totalsGroup{labels: slices.Clone(gl), points: map[int64]*totalsPoint{}}
		a.groups[k] = g
	}
	return &TotalsSeries{g: g, labels: ls, q: a.q}
}

// Add counts one profile of the series: its id, time and total v of the
// query's sample type.
func (s *TotalsSeries) Add(id model.RecordID, timeNanos, v int64) {
	ts := timeNanos
	if s.q.Step > 0 {
		ts = s.q.Start + (timeNanos-s.q.Start)/s.q.Step*s.q.Step
	}
	pt, ok := s.g.points[ts]
	if !ok {
		pt = &totalsPoint{}
		s.g.points[ts] = pt
	}
	pt.sum += v
	pt.n++
	if s.q.Exemplars && (pt.ex == nil || v > pt.ex.Value) {
		pt.ex = &ProfileExemplar{ProfileID: id, TimeNanos: timeNanos, Value: v, Labels: s.labels}
	}
}

// Totals returns the series (or groups) with points, sorted by labels,
// each with its points in time order.
func (a *TotalsAcc) Totals() []ProfileTotals {
	keys := make([]string, 0, len(a.groups))
	for k, g := range a.groups {
		if len(g.points) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]ProfileTotals, 0, len(keys))
	for _, k := range keys {
		g := a.groups[k]
		t := ProfileTotals{Labels: g.labels, Points: make([]ProfilePoint, 0, len(g.points))}
		for ts, pt := range g.points {
			v := float64(pt.sum)
			if a.q.Average {
				v /= float64(pt.n)
			}
			if pt.ex != nil {
				pt.ex.Labels = slices.Clone(pt.ex.Labels)
			}
			t.Points = append(t.Points, ProfilePoint{Timestamp: ts, Value: v, Exemplar: pt.ex})
		}
		sort.Slice(t.Points, func(i, j int) bool { return t.Points[i].Timestamp < t.Points[j].Timestamp })
		out = append(out, t)
	}
	return out
}
