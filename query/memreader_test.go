package query

import (
	"context"
	"sort"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// memReader is a storage.LogReader over rows held in memory, sorted by
// timestamp, for engine tests and benchmarks.
type memReader struct{ rows []storage.Row }

func newMemReader(rows []storage.Row) *memReader {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Timestamp < rows[j].Timestamp })
	return &memReader{rows: rows}
}

func (m *memReader) Select(ctx context.Context, p storage.SelectParams, fn func(*storage.Row) bool) error {
	match := func(r *storage.Row) bool {
		if r.Timestamp < p.Start || r.Timestamp >= p.End || !model.MatchLabels(p.Matchers, r.Labels) {
			return false
		}
		for _, c := range p.Contains {
			if !strings.Contains(r.Message, c) {
				return false
			}
		}
		for _, c := range p.ContainsFold {
			if !strings.Contains(strings.ToLower(r.Message), c) {
				return false
			}
		}
		return true
	}
	i0 := sort.Search(len(m.rows), func(i int) bool { return m.rows[i].Timestamp >= p.Start })
	if p.Backward {
		for i := len(m.rows) - 1; i >= i0; i-- {
			if r := &m.rows[i]; match(r) && !fn(r) {
				return nil
			}
		}
		return ctx.Err()
	}
	for i := i0; i < len(m.rows) && m.rows[i].Timestamp < p.End; i++ {
		if r := &m.rows[i]; match(r) && !fn(r) {
			return nil
		}
	}
	return ctx.Err()
}

func (m *memReader) LabelNames(context.Context, int64, int64) ([]string, error) { return nil, nil }

func (m *memReader) LabelValues(context.Context, string, int64, int64, []*model.LabelMatcher) ([]string, error) {
	return nil, nil
}

func (m *memReader) Series(context.Context, int64, int64, []*model.LabelMatcher) ([]model.Labels, error) {
	return nil, nil
}

var _ storage.LogReader = (*memReader)(nil)
