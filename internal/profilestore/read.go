package profilestore

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// matchSeries reports whether s is selected by sel's type and matchers.
func matchSeries(s *series, sel *storage.ProfileSelector) bool {
	if sel.Type != "" && s.typ != sel.Type {
		return false
	}
	return model.MatchLabels(sel.Matchers, s.labels)
}

// inRange returns the profiles of s (sorted by time) in sel's range.
func inRange(s *series, sel *storage.ProfileSelector) []*profMeta {
	ps := s.profiles
	i := sort.Search(len(ps), func(i int) bool { return ps[i].timeNanos >= sel.Start })
	j := len(ps)
	if sel.End > 0 {
		j = sort.Search(len(ps), func(i int) bool { return ps[i].timeNanos >= sel.End })
	}
	if i >= j {
		return nil
	}
	return ps[i:j]
}

// eachSeries calls fn, under the partition's read lock, for each series of
// the selection with profiles in range.
func (s *Store) eachSeries(ctx context.Context, sel *storage.ProfileSelector, fn func(p *partition, sr *series, ps []*profMeta) error) error {
	parts, err := s.partitionsFor(sel.Start, sel.End)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.eachSeriesOf(p, sel, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) eachSeriesOf(p *partition, sel *storage.ProfileSelector, fn func(p *partition, sr *series, ps []*profMeta) error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.gone {
		return nil
	}
	for _, sr := range p.series {
		if !matchSeries(sr, sel) {
			continue
		}
		if ps := inRange(sr, sel); len(ps) > 0 {
			if err := fn(p, sr, ps); err != nil {
				return err
			}
		}
	}
	return nil
}

// ProfileTypes implements storage.ProfileReader.
func (s *Store) ProfileTypes(ctx context.Context, sel storage.ProfileSelector) ([]storage.ProfileTypeInfo, error) {
	sel.Type = ""
	type key struct {
		typ string
		sig string
	}
	seen := map[key]storage.ProfileTypeInfo{}
	err := s.eachSeries(ctx, &sel, func(_ *partition, sr *series, ps []*profMeta) error {
		var last string
		for _, m := range ps {
			sig := typeSignature(m)
			if sig == last {
				continue
			}
			last = sig
			k := key{sr.typ, sig}
			if _, ok := seen[k]; !ok {
				seen[k] = storage.ProfileTypeInfo{Type: sr.typ, SampleTypes: m.sampleTypes, DefaultSampleType: m.defaultType, PeriodType: m.periodType}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]storage.ProfileTypeInfo, 0, len(seen))
	for _, t := range seen {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return typeSignatureOf(out[i].SampleTypes, out[i].PeriodType) < typeSignatureOf(out[j].SampleTypes, out[j].PeriodType)
	})
	return out, nil
}

func typeSignature(m *profMeta) string { return typeSignatureOf(m.sampleTypes, m.periodType) }

func typeSignatureOf(sts []storage.ValueType, period storage.ValueType) string {
	var b strings.Builder
	for _, st := range sts {
		b.WriteString(st.Type)
		b.WriteByte('/')
		b.WriteString(st.Unit)
		b.WriteByte(',')
	}
	b.WriteString(period.Type)
	b.WriteByte('/')
	b.WriteString(period.Unit)
	return b.String()
}

// LabelNames implements storage.ProfileReader.
func (s *Store) LabelNames(ctx context.Context, sel storage.ProfileSelector) ([]string, error) {
	seen := map[string]bool{}
	err := s.eachSeries(ctx, &sel, func(_ *partition, sr *series, _ []*profMeta) error {
		for _, l := range sr.labels {
			seen[l.Name] = true
		}
		return nil
	})
	return sortedSet(seen), err
}

// LabelValues implements storage.ProfileReader.
func (s *Store) LabelValues(ctx context.Context, name string, sel storage.ProfileSelector) ([]string, error) {
	seen := map[string]bool{}
	err := s.eachSeries(ctx, &sel, func(_ *partition, sr *series, _ []*profMeta) error {
		if v := sr.labels.Get(name); v != "" {
			seen[v] = true
		}
		return nil
	})
	return sortedSet(seen), err
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Series implements storage.ProfileReader.
func (s *Store) Series(ctx context.Context, sel storage.ProfileSelector) ([]storage.ProfileSeries, error) {
	seen := map[string]storage.ProfileSeries{}
	err := s.eachSeries(ctx, &sel, func(_ *partition, sr *series, _ []*profMeta) error {
		k := seriesKey(sr.typ, sr.labels)
		if _, ok := seen[k]; !ok {
			seen[k] = storage.ProfileSeries{Type: sr.typ, Labels: slices.Clone(sr.labels)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]storage.ProfileSeries, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out, nil
}

func metaOf(sr *series, m *profMeta) storage.ProfileMeta {
	return storage.ProfileMeta{
		ID: m.id, Type: sr.typ, Labels: slices.Clone(sr.labels),
		TimeNanos: m.timeNanos, DurationNanos: m.durationNanos,
		SampleTypes: slices.Clone(m.sampleTypes), Totals: slices.Clone(m.totals),
	}
}

// Profiles implements storage.ProfileReader.
func (s *Store) Profiles(ctx context.Context, sel storage.ProfileSelector, limit int) ([]storage.ProfileMeta, error) {
	var out []storage.ProfileMeta
	err := s.eachSeries(ctx, &sel, func(_ *partition, sr *series, ps []*profMeta) error {
		for _, m := range ps {
			out = append(out, metaOf(sr, m))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].TimeNanos != out[j].TimeNanos {
			return out[i].TimeNanos < out[j].TimeNanos
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// sampleTypeIndex returns the index of the sample type named name in m
// (storage.SampleTypeIndex).
func sampleTypeIndex(m *profMeta, name string) int {
	return storage.SampleTypeIndex(m.sampleTypes, m.defaultType, name)
}

// Totals implements storage.ProfileReader. It reads only the index: each
// profile's totals were computed when it was written.
func (s *Store) Totals(ctx context.Context, q storage.TotalsQuery) ([]storage.ProfileTotals, error) {
	acc := storage.NewTotalsAcc(&q)
	err := s.eachSeries(ctx, &q.ProfileSelector, func(_ *partition, sr *series, ps []*profMeta) error {
		as := acc.Series(sr.labels)
		for _, m := range ps {
			if i := sampleTypeIndex(m, q.SampleType); i >= 0 {
				as.Add(m.id, m.timeNanos, m.totals[i])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return acc.Totals(), nil
}

// Stats implements storage.ProfileReader.
func (s *Store) Stats(ctx context.Context) (storage.ProfileStats, error) {
	var st storage.ProfileStats
	sel := storage.ProfileSelector{}
	err := s.eachSeries(ctx, &sel, func(_ *partition, _ *series, ps []*profMeta) error {
		first, last := ps[0].timeNanos, ps[len(ps)-1].timeNanos
		if !st.DataIngested || first < st.Oldest {
			st.Oldest = first
		}
		if !st.DataIngested || last > st.Newest {
			st.Newest = last
		}
		st.DataIngested = true
		return nil
	})
	return st, err
}
