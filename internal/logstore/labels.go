package logstore

import (
	"context"
	"slices"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
)

// Series returns the label sets of the streams with rows in [start, end)
// that match every matcher, sorted. A stream counts when its rows' time
// span overlaps the range (stream spans are kept per partition, not per
// row, so a stream with rows on both sides of a gap covering the range is
// included).
func (s *Store) Series(ctx context.Context, start, end int64, matchers []*model.LabelMatcher) ([]model.Labels, error) {
	seen := map[uint64]model.Labels{}
	if err := s.eachStream(ctx, start, end, matchers, func(sid uint64, ls model.Labels) { seen[sid] = ls }); err != nil {
		return nil, err
	}
	out := make([]model.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, compareLabels)
	return out, nil
}

// LabelNames returns the sorted names of the labels of the streams with rows
// in [start, end).
func (s *Store) LabelNames(ctx context.Context, start, end int64) ([]string, error) {
	names := map[string]bool{}
	err := s.eachStream(ctx, start, end, nil, func(_ uint64, ls model.Labels) {
		for _, l := range ls {
			names[l.Name] = true
		}
	})
	return sortedKeys(names), err
}

// LabelValues returns the sorted, non-empty values of label name among the
// streams with rows in [start, end) that match every matcher.
func (s *Store) LabelValues(ctx context.Context, name string, start, end int64, matchers []*model.LabelMatcher) ([]string, error) {
	values := map[string]bool{}
	err := s.eachStream(ctx, start, end, matchers, func(_ uint64, ls model.Labels) {
		if v := ls.Get(name); v != "" {
			values[v] = true
		}
	})
	return sortedKeys(values), err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func compareLabels(a, b model.Labels) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// eachStream calls fn for every stream, on disk or in the head, whose span
// overlaps [start, end) and that matches matchers; a stream present in
// several partitions is passed once per partition.
func (s *Store) eachStream(ctx context.Context, start, end int64, matchers []*model.LabelMatcher, fn func(uint64, model.Labels)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if end <= start {
		return nil
	}
	overlaps := func(minTs, maxTs int64) bool { return maxTs >= start && minTs < end }
	dayLo, dayHi, minDay := dayOf(start), dayOf(end-1), s.minDay.Load()
	keepDay := func(d int32) bool { return d >= dayLo && d <= dayHi && d >= minDay }
	s.mu.RLock()
	if s.queryDone {
		s.mu.RUnlock()
		return ErrClosed
	}
	for day, p := range s.parts {
		if !keepDay(day) {
			continue
		}
		for sid, si := range p.streams {
			if overlaps(si.minTs, si.maxTs) && model.MatchLabels(matchers, si.labels) {
				fn(sid, si.labels)
			}
		}
	}
	heads := append([]*head{s.active}, s.frozen...)
	s.mu.RUnlock()
	for _, h := range heads {
		h.mu.RLock()
		for k, ms := range h.streams {
			if keepDay(k.day) && overlaps(ms.minTs, ms.maxTs) && model.MatchLabels(matchers, ms.labels) {
				fn(k.sid, ms.labels)
			}
		}
		h.mu.RUnlock()
	}
	return nil
}
