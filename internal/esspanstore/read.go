package esspanstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/storage"
)

type obj = map[string]any

// searchResponse is the part of a search answer the readers use.
type searchResponse struct {
	Hits struct {
		Hits []struct {
			Source json.RawMessage `json:"_source"`
			Sort   []any           `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations json.RawMessage `json:"aggregations"`
}

// search runs one search over index (a pattern).
func (s *Store) search(ctx context.Context, index string, body obj) (*searchResponse, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	status, resp, err := s.c.Do(ctx, http.MethodPost, "/"+index+"/_search?ignore_unavailable=true&allow_no_indices=true", b, "")
	if err != nil {
		return nil, fmt.Errorf("cannot search %s: %w", index, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("cannot search %s: status %d: %s", index, status, es.ErrorReason(resp))
	}
	// The response is what the query holds in memory.
	if err := querylimit.BudgetOf(ctx).Charge(len(resp)); err != nil {
		return nil, err
	}
	var r searchResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		return nil, fmt.Errorf("cannot parse search response of %s: %w", index, err)
	}
	return &r, nil
}

// scan calls f with the source of every hit of query, paging with
// search_after in (traceID, spanID) order, at most max hits; it reports
// whether it stopped at max.
func (s *Store) scan(ctx context.Context, query obj, source any, max int, f func(json.RawMessage) error) (bool, error) {
	var after []any
	n := 0
	for {
		body := obj{"query": query, "size": min(maxSearchHits, max-n), "sort": []any{obj{"traceID": "asc"}, obj{"spanID": "asc"}}}
		if source != nil {
			body["_source"] = source
		}
		if after != nil {
			body["search_after"] = after
		}
		r, err := s.search(ctx, s.prefix+spanIndexPart+"*", body)
		if err != nil {
			return false, err
		}
		for _, h := range r.Hits.Hits {
			if err := f(h.Source); err != nil {
				return false, err
			}
			after = h.Sort
		}
		n += len(r.Hits.Hits)
		if n >= max {
			return true, nil
		}
		if len(r.Hits.Hits) < body["size"].(int) {
			return false, nil
		}
	}
}

// GetTrace returns the spans of trace id ordered by start time, or
// storage.ErrTraceNotFound.
func (s *Store) GetTrace(ctx context.Context, id model.TraceID) ([]model.Span, error) {
	m, err := s.traces(ctx, []string{traceIDString(id)})
	if err != nil {
		return nil, err
	}
	spans := m[traceIDString(id)]
	if len(spans) == 0 {
		return nil, storage.ErrTraceNotFound
	}
	return spans, nil
}

// traces fetches the spans of the given traces (Jaeger id strings), each
// ordered by start time.
func (s *Store) traces(ctx context.Context, ids []string) (map[string][]model.Span, error) {
	out := map[string][]model.Span{}
	for i := 0; i < len(ids); i += 1000 {
		q := obj{"terms": obj{"traceID": ids[i:min(i+1000, len(ids))]}}
		_, err := s.scan(ctx, q, nil, 1<<31-1, func(src json.RawMessage) error {
			var d spanDoc
			if err := json.Unmarshal(src, &d); err != nil {
				return fmt.Errorf("cannot parse span document: %w", err)
			}
			sp, err := fromDoc(&d)
			if err != nil {
				return fmt.Errorf("span document %s/%s: %w", d.TraceID, d.SpanID, err)
			}
			out[d.TraceID] = append(out[d.TraceID], sp)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, spans := range out {
		slices.SortStableFunc(spans, func(a, b model.Span) int { return cmp.Compare(a.StartTime, b.StartTime) })
	}
	return out, nil
}

// tagQuery matches a span with tag k=v among its tags, its process tags or
// the fields of one of its logs.
func tagQuery(k, v string) obj {
	kv := func(path string) obj {
		return obj{"bool": obj{"must": []any{
			obj{"term": obj{path + ".key": k}},
			obj{"term": obj{path + ".value": v}},
		}}}
	}
	return obj{"bool": obj{"should": []any{
		obj{"nested": obj{"path": "tags", "query": kv("tags")}},
		obj{"nested": obj{"path": "process.tags", "query": kv("process.tags")}},
		obj{"nested": obj{"path": "logs", "query": obj{"nested": obj{"path": "logs.fields", "query": kv("logs.fields")}}}},
	}, "minimum_should_match": 1}}
}

// ceilDiv rounds a positive ns bound up to µs; floorDiv rounds down.
func ceilDiv(ns, d int64) int64 { return (ns + d - 1) / d }

// findQuery is the span query of q; Jaeger's fields are µs.
func findQuery(q *storage.TraceQuery) obj {
	var filter []any
	if q.Service != "" {
		filter = append(filter, obj{"term": obj{"process.serviceName": q.Service}})
	}
	if q.Operation != "" {
		filter = append(filter, obj{"term": obj{"operationName": q.Operation}})
	}
	if q.StartMin != 0 || q.StartMax != 0 {
		r, ms := obj{}, obj{}
		if q.StartMin != 0 {
			r["gte"], ms["gte"] = ceilDiv(q.StartMin, 1000), q.StartMin/1e6
		}
		if q.StartMax != 0 {
			r["lte"], ms["lte"] = q.StartMax/1000, q.StartMax/1e6
		}
		// startTimeMillis lets Elasticsearch skip whole shards and indices
		filter = append(filter, obj{"range": obj{"startTime": r}}, obj{"range": obj{"startTimeMillis": ms}})
	}
	if q.DurationMin != 0 || q.DurationMax != 0 {
		r := obj{}
		if q.DurationMin != 0 {
			r["gte"] = ceilDiv(q.DurationMin, 1000)
		}
		if q.DurationMax != 0 {
			r["lte"] = q.DurationMax / 1000
		}
		filter = append(filter, obj{"range": obj{"duration": r}})
	}
	keys := make([]string, 0, len(q.Tags))
	for k := range q.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		filter = append(filter, tagQuery(k, q.Tags[k]))
	}
	return obj{"bool": obj{"filter": filter}}
}

// FindTraces returns whole traces that have a span matching q, the trace
// with the latest matching span first, at most q.Limit (10000 when 0). The
// trace ids come from a terms aggregation ordered by the max start time of
// the matching spans; then their spans are fetched.
func (s *Store) FindTraces(ctx context.Context, q storage.TraceQuery) ([][]model.Span, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxTraceIDs {
		limit = maxTraceIDs
	}
	r, err := s.search(ctx, s.prefix+spanIndexPart+"*", obj{
		"size": 0, "query": findQuery(&q),
		"aggs": obj{"traces": obj{
			"terms": obj{"field": "traceID", "size": limit, "order": []any{obj{"last": "desc"}, obj{"_key": "asc"}}},
			"aggs":  obj{"last": obj{"max": obj{"field": "startTime"}}},
		}},
	})
	if err != nil {
		return nil, err
	}
	var aggs struct {
		Traces struct {
			Buckets []struct {
				Key string `json:"key"`
			} `json:"buckets"`
		} `json:"traces"`
	}
	if err := json.Unmarshal(r.Aggregations, &aggs); err != nil {
		return nil, fmt.Errorf("cannot parse trace id aggregation: %w", err)
	}
	ids := make([]string, 0, len(aggs.Traces.Buckets))
	for _, b := range aggs.Traces.Buckets {
		ids = append(ids, b.Key)
	}
	m, err := s.traces(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out [][]model.Span
	for _, id := range ids {
		if spans := m[id]; len(spans) > 0 {
			out = append(out, spans)
		}
	}
	return out, nil
}

type termsAgg struct {
	Buckets []struct {
		Key      string `json:"key"`
		DocCount int64  `json:"doc_count"`
		Kind     *struct {
			SpanKind struct {
				Values termsAgg `json:"values"`
			} `json:"span_kind"`
		} `json:"kind"`
		Spans *struct {
			DocCount int64 `json:"doc_count"`
		} `json:"spans"`
	} `json:"buckets"`
}

// Services returns the service names of the service indices, sorted.
func (s *Store) Services(ctx context.Context) ([]string, error) {
	r, err := s.search(ctx, s.prefix+serviceIdxPart+"*", obj{
		"size": 0, "aggs": obj{"services": obj{"terms": obj{"field": "serviceName", "size": maxSearchHits}}},
	})
	if err != nil {
		return nil, err
	}
	var aggs struct{ Services termsAgg }
	if err := json.Unmarshal(r.Aggregations, &aggs); err != nil {
		return nil, fmt.Errorf("cannot parse services aggregation: %w", err)
	}
	out := make([]string, 0, len(aggs.Services.Buckets))
	for _, b := range aggs.Services.Buckets {
		out = append(out, b.Key)
	}
	slices.Sort(out)
	return out, nil
}

// Operations returns the operations of service with the kinds of their
// spans (the span.kind tag; "" for spans without one), only those of
// spanKind when it is not "". Sorted by name and kind. The service index
// has no kinds, so this aggregates the span indices.
func (s *Store) Operations(ctx context.Context, service, spanKind string) ([]storage.Operation, error) {
	r, err := s.search(ctx, s.prefix+spanIndexPart+"*", obj{
		"size": 0, "query": obj{"term": obj{"process.serviceName": service}},
		"aggs": obj{"ops": obj{
			"terms": obj{"field": "operationName", "size": maxSearchHits},
			"aggs": obj{"kind": obj{
				"nested": obj{"path": "tags"},
				"aggs": obj{"span_kind": obj{
					"filter": obj{"term": obj{"tags.key": "span.kind"}},
					"aggs": obj{"values": obj{
						"terms": obj{"field": "tags.value", "size": 10},
						"aggs":  obj{"spans": obj{"reverse_nested": obj{}}},
					}},
				}},
			}},
		}},
	})
	if err != nil {
		return nil, err
	}
	var aggs struct{ Ops termsAgg }
	if err := json.Unmarshal(r.Aggregations, &aggs); err != nil {
		return nil, fmt.Errorf("cannot parse operations aggregation: %w", err)
	}
	out := []storage.Operation{}
	add := func(name, kind string) {
		if spanKind == "" || spanKind == kind {
			out = append(out, storage.Operation{Name: name, SpanKind: kind})
		}
	}
	for _, b := range aggs.Ops.Buckets {
		var withKind int64
		if b.Kind != nil {
			for _, k := range b.Kind.SpanKind.Values.Buckets {
				add(b.Key, k.Key)
				if k.Spans != nil {
					withKind += k.Spans.DocCount
				}
			}
		}
		if withKind < b.DocCount {
			add(b.Key, "")
		}
	}
	slices.SortFunc(out, func(a, b storage.Operation) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpanKind, b.SpanKind))
	})
	return out, nil
}

// depSpan is what Dependencies reads of a span.
type depSpan struct {
	TraceID      string     `json:"traceID"`
	SpanID       string     `json:"spanID"`
	ParentSpanID string     `json:"parentSpanID"`
	References   []refDoc   `json:"references"`
	Process      processDoc `json:"process"`
	Tags         []kvDoc    `json:"tags"`

	parentID string
}

// parent is the span's parent id: parentSpanID, else its first CHILD_OF
// reference in the same trace (spans written by Jaeger).
func (d *depSpan) parent() string {
	if d.ParentSpanID != "" {
		return d.ParentSpanID
	}
	for _, r := range d.References {
		if r.RefType == "CHILD_OF" && r.TraceID == d.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// callers returns the ids of the spans whose service is the caller of d,
// most likely first: the server half of a Zipkin shared span d names as
// its parent (model.SharedServerSpanID), then the parent.
func (d *depSpan) callers() []string {
	tid, err1 := parseTraceID(d.TraceID)
	pid, err2 := parseSpanID(d.parentID)
	sid, err3 := parseSpanID(d.SpanID)
	if err1 != nil || err2 != nil || err3 != nil {
		return []string{d.parentID}
	}
	server := model.SharedServerSpanID(tid, pid)
	if server == sid {
		return []string{d.parentID}
	}
	return []string{server.String(), d.parentID}
}

func (d *depSpan) isError() bool {
	for _, t := range d.Tags {
		if t.Key == "error" && t.Value == "true" && (t.Type == "bool" || t.Type == "string") ||
			t.Key == "otel.status_code" && t.Value == "ERROR" {
			return true
		}
	}
	return false
}

// ErrTooManySpans is returned by Dependencies when the window holds more
// spans to join than it joins (200,000); ask for a shorter lookback.
var ErrTooManySpans = errors.New("too many spans in the dependency window")

// errorTag matches a span tag marking an error: error=true, or
// otel.status_code=ERROR (depSpan.isError).
var errorTag = obj{"nested": obj{"path": "tags", "query": obj{"bool": obj{"minimum_should_match": 1, "should": []any{
	obj{"bool": obj{"filter": []any{obj{"term": obj{"tags.key": "error"}}, obj{"term": obj{"tags.value": "true"}}}}},
	obj{"bool": obj{"filter": []any{obj{"term": obj{"tags.key": "otel.status_code"}}, obj{"term": obj{"tags.value": "ERROR"}}}}},
}}}}}

// Dependencies returns the calls between services of the spans that started
// in (endTs-lookback, endTs] (Unix ns): one call from the parent span's
// service to the span's for every span whose parent belongs to another
// service, an error when the child failed. Spans written with their
// parent's service (vigil.parentService, see edges.go) are counted by an
// aggregation, whatever their number; the others are joined here, at most
// 200,000 of them, their parents looked up by id.
func (s *Store) Dependencies(ctx context.Context, endTs int64, lookback time.Duration) ([]storage.Dependency, error) {
	startTs := endTs - int64(lookback)
	// (startTs, endTs] in ns is [startTs/1000+1, endTs/1000] in whole µs
	window := []any{
		obj{"range": obj{"startTime": obj{"gt": startTs / 1000, "lte": endTs / 1000}}},
		obj{"range": obj{"startTimeMillis": obj{"gte": startTs / 1e6, "lte": endTs / 1e6}}},
	}
	type edge struct{ parent, child string }
	deps := map[edge]*storage.Dependency{}
	add := func(parent, child string, calls, errs uint64) {
		if parent == child {
			return
		}
		d := deps[edge{parent, child}]
		if d == nil {
			d = &storage.Dependency{Parent: parent, Child: child}
			deps[edge{parent, child}] = d
		}
		d.CallCount += calls
		d.ErrorCount += errs
	}
	if err := s.aggregateCalls(ctx, window, add); err != nil {
		return nil, err
	}

	// The rest: spans with a parent in their trace but no parent service.
	q := obj{"bool": obj{
		"filter":   window,
		"must_not": []any{obj{"exists": obj{"field": "vigil.parentService"}}},
		"should": []any{
			obj{"exists": obj{"field": "parentSpanID"}},
			obj{"nested": obj{"path": "references", "query": obj{"term": obj{"references.refType": "CHILD_OF"}}}},
		},
		"minimum_should_match": 1,
	}}
	src := []string{"traceID", "spanID", "parentSpanID", "references", "process.serviceName", "tags"}
	type key struct{ trace, span string }
	service := map[key]string{}
	var children []depSpan
	full, err := s.scan(ctx, q, src, maxDepSpans, func(b json.RawMessage) error {
		var d depSpan
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("cannot parse span document: %w", err)
		}
		service[key{d.TraceID, d.SpanID}] = d.Process.ServiceName
		if d.parentID = d.parent(); d.parentID != "" {
			d.References, d.Tags = nil, slices.DeleteFunc(d.Tags, func(t kvDoc) bool { return t.Key != "error" && t.Key != "otel.status_code" })
			children = append(children, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if full {
		return nil, fmt.Errorf("%w: more than %d spans without their parent's service started in the last %s before %s",
			ErrTooManySpans, maxDepSpans, lookback, time.Unix(0, endTs).UTC().Format(time.RFC3339))
	}
	var missing []key
	for _, c := range children {
		for _, id := range c.callers() {
			if _, ok := service[key{c.TraceID, id}]; !ok {
				missing = append(missing, key{c.TraceID, id})
			}
		}
	}
	for i := 0; i < len(missing); i += 1000 {
		var traces, spans []string
		for _, k := range missing[i:min(i+1000, len(missing))] {
			traces, spans = append(traces, k.trace), append(spans, k.span)
		}
		q := obj{"bool": obj{"filter": []any{obj{"terms": obj{"traceID": traces}}, obj{"terms": obj{"spanID": spans}}}}}
		_, err := s.scan(ctx, q, []string{"traceID", "spanID", "process.serviceName"}, 1<<31-1, func(b json.RawMessage) error {
			var d depSpan
			if err := json.Unmarshal(b, &d); err != nil {
				return fmt.Errorf("cannot parse span document: %w", err)
			}
			service[key{d.TraceID, d.SpanID}] = d.Process.ServiceName
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, c := range children {
		for _, id := range c.callers() {
			if parent, ok := service[key{c.TraceID, id}]; ok {
				add(parent, c.Process.ServiceName, 1, uint64(btoi(c.isError()))) // #nosec G115 -- 0 or 1
				break
			}
		}
	}
	out := make([]storage.Dependency, 0, len(deps))
	for _, d := range deps {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b storage.Dependency) int {
		return cmp.Or(cmp.Compare(a.Parent, b.Parent), cmp.Compare(a.Child, b.Child))
	})
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// aggregateCalls counts, with a composite aggregation paged to the end,
// the spans of the window that carry their parent's service, by (parent
// service, service), and those of them with an error.
func (s *Store) aggregateCalls(ctx context.Context, window []any, add func(parent, child string, calls, errs uint64)) error {
	var after any
	for {
		comp := obj{"size": 1000, "sources": []any{
			obj{"parent": obj{"terms": obj{"field": "vigil.parentService"}}},
			obj{"child": obj{"terms": obj{"field": "process.serviceName"}}},
		}}
		if after != nil {
			comp["after"] = after
		}
		body := obj{"size": 0, "track_total_hits": false,
			"query": obj{"bool": obj{"filter": append(slices.Clone(window), obj{"exists": obj{"field": "vigil.parentService"}})}},
			"aggs":  obj{"calls": obj{"composite": comp, "aggs": obj{"errors": obj{"filter": errorTag}}}},
		}
		r, err := s.search(ctx, s.prefix+spanIndexPart+"*", body)
		if err != nil {
			return err
		}
		var a struct {
			Calls struct {
				AfterKey any `json:"after_key"`
				Buckets  []struct {
					Key struct {
						Parent string `json:"parent"`
						Child  string `json:"child"`
					} `json:"key"`
					DocCount uint64 `json:"doc_count"`
					Errors   struct {
						DocCount uint64 `json:"doc_count"`
					} `json:"errors"`
				} `json:"buckets"`
			} `json:"calls"`
		}
		if len(r.Aggregations) > 0 {
			if err := json.Unmarshal(r.Aggregations, &a); err != nil {
				return fmt.Errorf("cannot parse the dependency aggregation: %w", err)
			}
		}
		for _, b := range a.Calls.Buckets {
			add(b.Key.Parent, b.Key.Child, b.DocCount, b.Errors.DocCount)
		}
		if a.Calls.AfterKey == nil || len(a.Calls.Buckets) == 0 {
			return nil
		}
		after = a.Calls.AfterKey
	}
}
