package esstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
)

// maxLabelValues bounds the values LabelValues returns (a terms
// aggregation's size).
const maxLabelValues = 10000

// compositePage is the page size of composite aggregations.
const compositePage = 1000

func (s *Store) aggregate(ctx context.Context, op string, start, end int64, body map[string]any) (*fastjson.Value, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	path := "/" + s.indices(start, end) + "/_search?" + searchParams + "&filter_path=aggregations"
	resp, err := s.search(ctx, op, path, b)
	if err != nil {
		return nil, err
	}
	v, err := fastjson.ParseBytes(resp)
	if err != nil {
		return nil, fmt.Errorf("cannot parse %s response: %w", op, err)
	}
	return v, nil
}

// LabelNames returns the stream label names that some record in
// [start, end) has, sorted.
func (s *Store) LabelNames(ctx context.Context, start, end int64) ([]string, error) {
	q := translate(start, end, nil, nil, nil)
	if isMatchNone(q.q) {
		return nil, nil
	}
	aggs := map[string]any{}
	for _, lf := range labelFields {
		aggs[lf.label] = map[string]any{"filter": exists(lf.field)}
	}
	v, err := s.aggregate(ctx, "label_names", start, end, map[string]any{"size": 0, "query": q.q, "aggs": aggs})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, lf := range labelFields { // already sorted by label name
		if v.GetInt("aggregations", lf.label, "doc_count") > 0 {
			names = append(names, lf.label)
		}
	}
	return names, nil
}

// LabelValues returns the values (at most 10,000, sorted) of label name in
// the records of [start, end) that match ms.
func (s *Store) LabelValues(ctx context.Context, name string, start, end int64, ms []*model.LabelMatcher) ([]string, error) {
	field, ok := labelField(name)
	if !ok {
		return nil, nil
	}
	q := translate(start, end, ms, nil, nil)
	if isMatchNone(q.q) {
		return nil, nil
	}
	if !q.exact {
		series, err := s.Series(ctx, start, end, ms)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var out []string
		for _, ls := range series {
			if v := ls.Get(name); v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		slices.Sort(out)
		return out, nil
	}
	body := map[string]any{"size": 0, "query": q.q, "aggs": map[string]any{
		"v": map[string]any{"terms": map[string]any{"field": field, "size": maxLabelValues}},
	}}
	v, err := s.aggregate(ctx, "label_values", start, end, body)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range v.GetArray("aggregations", "v", "buckets") {
		if k := string(scalarBytes(b.Get("key"))); k != "" && k != "0" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

// seriesBuckets pages through a composite aggregation over the six label
// fields and calls fn with each label set and its record count.
func (s *Store) seriesBuckets(ctx context.Context, op string, start, end int64, q query, fn func(model.Labels, int64)) error {
	comp := map[string]any{"size": compositePage, "sources": labelSources()}
	body := map[string]any{"size": 0, "query": q.q, "aggs": map[string]any{"s": map[string]any{"composite": comp}}}
	for {
		v, err := s.aggregate(ctx, op, start, end, body)
		if err != nil {
			return err
		}
		buckets := v.GetArray("aggregations", "s", "buckets")
		for _, b := range buckets {
			fn(bucketLabels(b), b.GetInt64("doc_count"))
		}
		after := v.Get("aggregations", "s", "after_key")
		if len(buckets) < compositePage || after == nil {
			return nil
		}
		comp["after"] = json.RawMessage(after.MarshalTo(nil))
	}
}

// labelSources are the sources of a composite aggregation by stream.
func labelSources() []any {
	sources := make([]any, len(labelFields))
	for i, lf := range labelFields {
		sources[i] = map[string]any{lf.label: map[string]any{"terms": map[string]any{"field": lf.field, "missing_bucket": true}}}
	}
	return sources
}

// bucketLabels returns the stream labels of a bucket of a composite
// aggregation over labelSources.
func bucketLabels(b *fastjson.Value) model.Labels {
	ls := make(model.Labels, 0, len(labelFields))
	for _, lf := range labelFields {
		val := string(scalarBytes(b.Get("key", lf.label)))
		if val == "" || (lf.field == fGrade && !positive(val)) {
			continue
		}
		ls = append(ls, model.Label{Name: lf.label, Value: val})
	}
	return ls
}

func positive(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0
}

// Series returns the distinct label sets of the records of [start, end)
// that match ms, ordered by label values.
func (s *Store) Series(ctx context.Context, start, end int64, ms []*model.LabelMatcher) ([]model.Labels, error) {
	q := translate(start, end, ms, nil, nil)
	if isMatchNone(q.q) {
		return nil, nil
	}
	var out []model.Labels
	err := s.seriesBuckets(ctx, "series", start, end, q, func(ls model.Labels, _ int64) {
		if model.MatchLabels(ms, ls) {
			out = append(out, ls)
		}
	})
	return out, err
}

// Count returns how many records of [start, end) match ms.
func (s *Store) Count(ctx context.Context, start, end int64, ms []*model.LabelMatcher) (int64, error) {
	q := translate(start, end, ms, nil, nil)
	if isMatchNone(q.q) {
		return 0, nil
	}
	if !q.exact {
		var n int64
		err := s.seriesBuckets(ctx, "count", start, end, q, func(ls model.Labels, c int64) {
			if model.MatchLabels(ms, ls) {
				n += c
			}
		})
		return n, err
	}
	body, _ := json.Marshal(map[string]any{"query": q.q})
	resp, err := s.search(ctx, "count", "/"+s.indices(start, end)+"/_count?ignore_unavailable=true&allow_no_indices=true", body)
	if err != nil {
		return 0, err
	}
	v, err := fastjson.ParseBytes(resp)
	if err != nil {
		return 0, fmt.Errorf("cannot parse count response: %w", err)
	}
	if f := v.GetInt("_shards", "failed"); f > 0 {
		return 0, fmt.Errorf("count failed on %d shards: %s", f, es.Snippet(resp))
	}
	return v.GetInt64("count"), nil
}

// MinuteKey identifies one cell of CountByMinute.
type MinuteKey struct {
	Minute  int64 // Unix ns of the minute's start (UTC)
	Service string
	Source  string
}

// CountByMinute counts the records of [start, end) per minute, service and
// source, for reconciliation against what the collectors produced.
func (s *Store) CountByMinute(ctx context.Context, start, end int64) (map[MinuteKey]int64, error) {
	q := translate(start, end, nil, nil, nil)
	out := map[MinuteKey]int64{}
	if isMatchNone(q.q) {
		return out, nil
	}
	comp := map[string]any{"size": compositePage, "sources": []any{
		map[string]any{"minute": map[string]any{"date_histogram": map[string]any{"field": fTimestamp, "fixed_interval": "1m"}}},
		map[string]any{"service": map[string]any{"terms": map[string]any{"field": fService, "missing_bucket": true}}},
		map[string]any{"source": map[string]any{"terms": map[string]any{"field": fSource, "missing_bucket": true}}},
	}}
	body := map[string]any{"size": 0, "query": q.q, "aggs": map[string]any{"s": map[string]any{"composite": comp}}}
	for {
		v, err := s.aggregate(ctx, "count_by_minute", start, end, body)
		if err != nil {
			return nil, err
		}
		buckets := v.GetArray("aggregations", "s", "buckets")
		for _, b := range buckets {
			k := MinuteKey{
				Minute:  b.GetInt64("key", "minute") * 1e6, // epoch ms
				Service: string(scalarBytes(b.Get("key", "service"))),
				Source:  string(scalarBytes(b.Get("key", "source"))),
			}
			out[k] += b.GetInt64("doc_count")
		}
		after := v.Get("aggregations", "s", "after_key")
		if len(buckets) < compositePage || after == nil {
			return out, nil
		}
		comp["after"] = json.RawMessage(after.MarshalTo(nil))
	}
}

// ExistingIDs returns which of ids are stored (in any daily index).
func (s *Store) ExistingIDs(ctx context.Context, ids []model.RecordID) (map[model.RecordID]bool, error) {
	out := make(map[model.RecordID]bool)
	const chunk = 1000
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		vals := make([]string, n)
		for i, id := range ids[:n] {
			vals[i] = id.String()
		}
		ids = ids[n:]
		body, _ := json.Marshal(map[string]any{"size": n, "_source": false, "track_total_hits": false,
			"query": map[string]any{"ids": map[string]any{"values": vals}}})
		resp, err := s.search(ctx, "ids", "/"+s.opts.IndexPrefix+"*/_search?"+searchParams+"&filter_path=hits.hits._id", body)
		if err != nil {
			return nil, err
		}
		v, err := fastjson.ParseBytes(resp)
		if err != nil {
			return nil, fmt.Errorf("cannot parse search response: %w", err)
		}
		for _, h := range v.GetArray("hits", "hits") {
			var id model.RecordID
			if b := h.GetStringBytes("_id"); len(b) == 32 {
				if _, err := hex.Decode(id[:], b); err == nil {
					out[id] = true
				}
			}
		}
	}
	return out, nil
}
