package esstore

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

var _ storage.StreamStatsReader = (*Store)(nil)

// statsPage is the page size of the StreamStats aggregation: every page
// aggregates all matching documents again, so pages are as large as
// Elasticsearch's default search.max_buckets (65,536) allows.
const statsPage = 60000

// StreamStats sums the records and message bytes of the matching streams
// per bucket (see storage.StreamStatsReader) with one aggregation: a
// composite over vigil.stream (the stream labels as one keyword) and, when
// step > 0, a date_histogram; each bucket's doc count and sum of
// vigil.message_bytes.
//
// It reads the records instead (exactly, through Select) when the
// aggregation cannot be exact: when some matching record lacks
// vigil.stream (written into an index created before the mapping had it,
// or with a stream key over streamKeyMax bytes), or when start or step is
// not a whole millisecond (Elasticsearch buckets date_nanos by the
// millisecond).
func (s *Store) StreamStats(ctx context.Context, ms []*model.LabelMatcher, start, end, step int64) ([]storage.StreamStat, error) {
	if end <= start {
		return nil, nil
	}
	q := translate(start, end, ms, nil, nil)
	if isMatchNone(q.q) {
		return nil, nil
	}
	const ms1 = int64(1e6)
	if step > 0 && (start%ms1 != 0 || step%ms1 != 0) {
		return s.scanStats(ctx, ms, start, end, step)
	}
	nb := storage.StatBuckets(start, end, step)
	sources := []any{map[string]any{"s": map[string]any{"terms": map[string]any{"field": fStream}}}}
	if step > 0 {
		sources = append(sources, map[string]any{"t": map[string]any{"date_histogram": map[string]any{
			"field": fTimestamp, "fixed_interval": strconv.FormatInt(step/ms1, 10) + "ms",
			"offset": strconv.FormatInt(start/ms1%(step/ms1), 10) + "ms",
		}}})
	}
	comp := map[string]any{"size": statsPage, "sources": sources}
	body := map[string]any{"size": 0, "query": q.q, "aggs": map[string]any{
		"s": map[string]any{"composite": comp, "aggs": map[string]any{"b": map[string]any{"sum": map[string]any{"field": fMsgBytes}}}},
		// records without a stream key: an index of an older mapping,
		// or a key over streamKeyMax
		"old": map[string]any{"missing": map[string]any{"field": fStream}},
	}}
	var out []storage.StreamStat
	var key []byte
	byStream := map[string]int{} // index in out
	for {
		v, err := s.aggregate(ctx, "stream_stats", start, end, body)
		if err != nil {
			return nil, err
		}
		if v.GetInt64("aggregations", "old", "doc_count") > 0 {
			return s.scanStats(ctx, ms, start, end, step)
		}
		buckets := v.GetArray("aggregations", "s", "buckets")
		for _, b := range buckets {
			ls, err := parseStreamKey(scalarBytes(b.Get("key", "s")))
			if err != nil {
				return nil, err
			}
			if !q.exact && !model.MatchLabels(ms, ls) {
				continue
			}
			// Buckets of one stream are adjacent, and may continue on
			// the next page.
			key = appendLabelsKey(key[:0], ls)
			k, ok := byStream[string(key)]
			if !ok {
				k = len(out)
				byStream[string(key)] = k
				out = append(out, storage.StreamStat{Labels: ls, Rows: make([]int64, nb), Bytes: make([]int64, nb)})
			}
			i := int64(0)
			if step > 0 {
				i = min(max((b.GetInt64("key", "t")*ms1-start)/step, 0), int64(nb-1))
			}
			out[k].Rows[i] += b.GetInt64("doc_count")
			out[k].Bytes[i] += int64(b.GetFloat64("b", "value"))
		}
		after := v.Get("aggregations", "s", "after_key")
		if len(buckets) == 0 || after == nil {
			return out, nil
		}
		comp["after"] = json.RawMessage(after.MarshalTo(nil))
	}
}

// scanStats is StreamStats computed from the records themselves.
func (s *Store) scanStats(ctx context.Context, ms []*model.LabelMatcher, start, end, step int64) ([]storage.StreamStat, error) {
	nb := storage.StatBuckets(start, end, step)
	byStream := map[string]*storage.StreamStat{}
	var key []byte
	err := s.Select(ctx, storage.SelectParams{Start: start, End: end, Matchers: ms}, func(r *storage.Row) bool {
		key = appendLabelsKey(key[:0], r.Labels)
		st := byStream[string(key)]
		if st == nil {
			st = &storage.StreamStat{Labels: append(model.Labels(nil), r.Labels...), Rows: make([]int64, nb), Bytes: make([]int64, nb)}
			byStream[string(key)] = st
		}
		i := 0
		if step > 0 {
			i = min(int((r.Timestamp-start)/step), nb-1)
		}
		st.Rows[i]++
		st.Bytes[i] += int64(len(r.Message))
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]storage.StreamStat, 0, len(byStream))
	for _, st := range byStream {
		out = append(out, *st)
	}
	return out, nil
}

// appendLabelsKey appends a map key identifying ls.
func appendLabelsKey(b []byte, ls model.Labels) []byte {
	for _, l := range ls {
		b = append(append(append(b, l.Name...), 0), l.Value...)
		b = append(b, 0)
	}
	return b
}
