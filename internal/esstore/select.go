package esstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/storage"
)

// maxListedDays: a time range of at most this many days searches its daily
// indices by name; a longer one searches <prefix>*, and Elasticsearch skips
// the shards whose @timestamp range cannot match.
const maxListedDays = 14

// searchParams are added to every search: a missing daily index is simply
// empty, and a search that failed on some shard fails instead of silently
// returning part of the answer.
const searchParams = "ignore_unavailable=true&allow_no_indices=true&allow_partial_search_results=false"

// indices names the indices that can hold [start, end).
func (s *Store) indices(start, end int64) string {
	const day = int64(24 * time.Hour)
	if start <= 0 || end == math.MaxInt64 || end-start > maxListedDays*day {
		return s.opts.IndexPrefix + "*"
	}
	var b strings.Builder
	for d := indexDay(start); d <= indexDay(end-1); d++ {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.dayIndex(d))
	}
	return b.String()
}

func sortSpec(backward bool) []any {
	order := "asc"
	if backward {
		order = "desc"
	}
	return []any{
		map[string]any{fTimestamp: map[string]any{"order": order, "unmapped_type": "date_nanos"}},
		map[string]any{fEventID: map[string]any{"order": order, "unmapped_type": "keyword"}},
	}
}

// Select calls fn for each record matching p, in timestamp order (newest
// first when p.Backward; equal timestamps ordered by id), until fn returns
// false. It pages through the hits with search_after on the unique key
// (@timestamp, event.id), so records are neither repeated nor skipped while
// others are being written. Label matchers and line filters are translated
// into the search; line filters are verified exactly on each message. The
// Row and everything it points to are only valid during fn; its Labels may
// be shared between rows and must not be modified.
func (s *Store) Select(ctx context.Context, p storage.SelectParams, fn func(*storage.Row) bool) error {
	q := translate(p.Start, p.End, p.Matchers, p.Contains, p.ContainsFold).withAny(p.ContainsAny)
	if isMatchNone(q.q) {
		return nil
	}
	var row storage.Row
	lc := labelCache{}
	each := func(h *fastjson.Value) (bool, error) {
		if err := decodeHit(h, &row, lc); err != nil {
			return false, err
		}
		if !q.exact && !model.MatchLabels(p.Matchers, row.Labels) {
			return true, nil
		}
		if !containsAll(row.Message, p.Contains, p.ContainsFold) || !containsAny(row.Message, p.ContainsAny) {
			return true, nil
		}
		return fn(&row), nil
	}
	if p.AnyOrder {
		return s.scanAnyOrder(ctx, s.indices(p.Start, p.End), q.q, each)
	}
	page := s.opts.SearchPageSize
	path := "/" + s.indices(p.Start, p.End) + "/_search?" + searchParams + "&filter_path=hits.hits._id,hits.hits._source,hits.hits.sort"
	req := map[string]any{"query": q.q, "size": page, "sort": sortSpec(p.Backward), "track_total_hits": false}
	return s.searchAfter(ctx, "select", path, req, page, each)
}

// scanPageFactor is how many times more hits a page of scanAnyOrder holds
// than a sorted page (SearchPageSize): unsorted pages cost Elasticsearch
// little.
const scanPageFactor = 10

// scanAnyOrder calls fn for each hit of query over indices, in the order
// Elasticsearch stores them, until fn returns false or an error. It pages
// with search_after on _shard_doc in a point in time, which reads the hits
// without sorting them: sorting every matching document by time again for
// each page is what makes a sorted scan of many documents slow. The point
// in time also gives every page the same view of the indices.
func (s *Store) scanAnyOrder(ctx context.Context, indices string, query map[string]any, fn func(h *fastjson.Value) (bool, error)) error {
	status, resp, err := s.c.Do(ctx, http.MethodPost, "/"+indices+"/_pit?keep_alive=1m&ignore_unavailable=true&allow_no_indices=true", nil, "")
	if err != nil {
		return fmt.Errorf("cannot open a point in time: %w", err)
	}
	if status != http.StatusOK {
		//lint:ignore ST1005 it begins with the name Elasticsearch
		return fmt.Errorf("Elasticsearch open point in time: status %d: %s", status, es.ErrorReason(resp))
	}
	var parser fastjson.Parser
	v, err := parser.ParseBytes(resp)
	if err != nil {
		return fmt.Errorf("cannot parse the point in time: %w", err)
	}
	pit := string(v.GetStringBytes("id"))
	defer func() {
		// Closing frees the point in time before its keep-alive ends;
		// a failure here only leaves it to expire.
		body, _ := json.Marshal(map[string]string{"id": pit})
		_, _, _ = s.c.Do(context.WithoutCancel(ctx), http.MethodDelete, "/_pit", body, "")
	}()
	page := s.opts.SearchPageSize * scanPageFactor
	req := map[string]any{"query": query, "size": page, "track_total_hits": false,
		"sort": []any{map[string]any{"_shard_doc": "asc"}}}
	for {
		req["pit"] = map[string]any{"id": pit, "keep_alive": "1m"}
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		resp, err := s.search(ctx, "select", "/_search?allow_partial_search_results=false&filter_path=pit_id,hits.hits._id,hits.hits._source,hits.hits.sort", body)
		if err != nil {
			return err
		}
		v, err := parser.ParseBytes(resp)
		if err != nil {
			return fmt.Errorf("cannot parse search response: %w", err)
		}
		if id := v.GetStringBytes("pit_id"); len(id) > 0 {
			pit = string(id)
		}
		hits := v.GetArray("hits", "hits")
		var after []byte
		if len(hits) == page {
			sv := hits[len(hits)-1].Get("sort")
			if sv == nil {
				return fmt.Errorf("search hit without sort values")
			}
			after = sv.MarshalTo(nil)
		}
		for _, h := range hits {
			h.Del("sort") // a shard position, not the hit's timestamp
			more, err := fn(h)
			if err != nil || !more {
				return err
			}
		}
		if after == nil {
			return nil
		}
		req["search_after"] = json.RawMessage(after)
	}
}

// searchAfter pages through the hits of a sorted search, page hits at a
// time with search_after, calling fn for each until it returns false or
// an error. req must ask for the hits' sort values and is modified.
func (s *Store) searchAfter(ctx context.Context, op, path string, req map[string]any, page int, fn func(h *fastjson.Value) (bool, error)) error {
	var parser fastjson.Parser
	for {
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		resp, err := s.search(ctx, op, path, body)
		if err != nil {
			return err
		}
		v, err := parser.ParseBytes(resp)
		if err != nil {
			return fmt.Errorf("cannot parse search response: %w", err)
		}
		hits := v.GetArray("hits", "hits")
		for _, h := range hits {
			more, err := fn(h)
			if err != nil || !more {
				return err
			}
		}
		if len(hits) < page {
			return nil
		}
		after := hits[len(hits)-1].Get("sort")
		if after == nil {
			return fmt.Errorf("search hit without sort values")
		}
		req["search_after"] = json.RawMessage(after.MarshalTo(nil))
	}
}

func isMatchNone(q map[string]any) bool {
	_, ok := q["match_none"]
	return ok
}

func containsAll(msg string, contains, fold []string) bool {
	for _, c := range contains {
		if !strings.Contains(msg, c) {
			return false
		}
	}
	for _, c := range fold {
		if !containsFoldASCII(msg, c) {
			return false
		}
	}
	return true
}

// containsAny reports whether msg contains a text of each group.
func containsAny(msg string, groups [][]string) bool {
	for _, g := range groups {
		if !slices.ContainsFunc(g, func(s string) bool { return strings.Contains(msg, s) }) {
			return false
		}
	}
	return true
}

// labelCache interns label sets, so rows of one stream share one Labels and
// the strings in it outlive the row (callers keep labels without copying
// their strings).
type labelCache map[string]model.Labels

func (lc labelCache) get(vals *[6][]byte) model.Labels {
	var kb [256]byte
	key := kb[:0]
	for _, v := range vals {
		key = append(key, v...)
		key = append(key, 0xff)
	}
	if ls, ok := lc[string(key)]; ok {
		return ls
	}
	ls := make(model.Labels, 0, 6)
	for i, v := range vals {
		if len(v) > 0 {
			ls = append(ls, model.Label{Name: labelFields[i].label, Value: string(v)})
		}
	}
	lc[string(key)] = ls
	return ls
}

// str returns the string at path, accepting both nested objects
// ({"service":{"name":…}}) and dotted keys ({"service.name":…}), as
// Elasticsearch does.
func str(src *fastjson.Value, path ...string) []byte {
	if v := src.Get(path...); v != nil {
		return scalarBytes(v)
	}
	if len(path) > 1 {
		if v := src.Get(strings.Join(path, ".")); v != nil {
			return scalarBytes(v)
		}
	}
	return nil
}

func scalarBytes(v *fastjson.Value) []byte {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return b
	case fastjson.TypeNull:
		return nil
	}
	return v.MarshalTo(nil)
}

// decodeHit fills row from one search hit.
func decodeHit(h *fastjson.Value, row *storage.Row, lc labelCache) error {
	src := h.Get("_source")
	if src == nil {
		return fmt.Errorf("search hit %s without _source", h.GetStringBytes("_id"))
	}
	row.ID = model.RecordID{}
	id := h.GetStringBytes("_id")
	if len(id) == 32 {
		_, _ = hex.Decode(row.ID[:], id) // an id not written by Vigil stays zero
	}
	row.Timestamp = 0
	if sv := h.GetArray("sort"); len(sv) > 0 && sv[0].Type() == fastjson.TypeNumber {
		row.Timestamp = sv[0].GetInt64()
	} else if t, err := time.Parse(time.RFC3339Nano, string(str(src, fTimestamp))); err == nil {
		row.Timestamp = t.UnixNano()
	}
	row.ObservedTimestamp = 0
	if c := str(src, "event", "created"); c != nil {
		if t, err := time.Parse(time.RFC3339Nano, string(c)); err == nil {
			row.ObservedTimestamp = t.UnixNano()
		}
	}
	var vals [6][]byte
	vals[0] = str(src, "vigil", "env")
	if g := str(src, "vigil", "grade"); g != nil {
		if n, err := strconv.Atoi(string(g)); err == nil && n > 0 {
			vals[1] = g
		}
	}
	vals[2] = str(src, "host", "name")
	vals[3] = str(src, "log", "level")
	vals[4] = str(src, "service", "name")
	vals[5] = str(src, "vigil", "source")
	row.Labels = lc.get(&vals)

	row.Message = string(str(src, "message"))
	row.TraceID = string(str(src, "trace", "id"))
	row.SpanID = string(str(src, "span", "id"))
	row.Truncated = src.GetBool("vigil", "truncated") || src.GetBool("vigil.truncated")

	row.Attributes = row.Attributes[:0]
	if p := str(src, "log", "file", "path"); p != nil {
		row.Attributes = append(row.Attributes, model.Attr{Key: attrFilePath, Value: string(p)})
	}
	if o := src.GetObject(fLabels); o != nil {
		o.Visit(func(k []byte, v *fastjson.Value) {
			if v.Type() == fastjson.TypeArray {
				for _, e := range v.GetArray() {
					row.Attributes = append(row.Attributes, model.Attr{Key: string(k), Value: string(scalarBytes(e))})
				}
				return
			}
			row.Attributes = append(row.Attributes, model.Attr{Key: string(k), Value: string(scalarBytes(v))})
		})
	}
	return nil
}

// search sends a search (or count) request, retrying transient failures a
// few times, and returns the response body.
func (s *Store) search(ctx context.Context, op, path string, body []byte) ([]byte, error) {
	start := time.Now()
	defer func() { s.m.searchSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds()) }()
	const attempts = 3
	var last error
	for attempt := 1; ; attempt++ {
		status, resp, err := s.c.Do(ctx, http.MethodPost, path, body, "")
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			last = err
		case status == http.StatusOK:
			// The response is what the query holds in memory.
			return resp, querylimit.BudgetOf(ctx).Charge(len(resp))
		case status == http.StatusTooManyRequests || status >= 500:
			last = fmt.Errorf("status %d: %s", status, es.ErrorReason(resp))
		default:
			//lint:ignore ST1005 it begins with the name Elasticsearch
			return nil, fmt.Errorf("Elasticsearch %s: status %d: %s", op, status, es.ErrorReason(resp))
		}
		if attempt >= attempts {
			//lint:ignore ST1005 it begins with the name Elasticsearch
			return nil, fmt.Errorf("Elasticsearch %s failed %d times: %w", op, attempt, last)
		}
		if err := backoff.Sleep(ctx, s.backoff().Delay(attempt)); err != nil {
			return nil, err
		}
	}
}
