package esstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Mined patterns (storage.PatternWriter) live in daily indices of their
// own, <patterns prefix>YYYY.MM.DD ("vigil-patterns-" beside the default
// "vigil-logs-"), one document per stream × level × pattern × flush and
// day: the stream's labels in the fields log documents use, so that
// selectors translate the same way, and the counts per 10 s bucket in
// vigil.pattern.buckets (not indexed). Retention deletes them with the
// log indices of their day.

// Field names of a pattern document.
const (
	fPatternText    = "vigil.pattern.text"
	fPatternLevel   = "vigil.pattern.level"
	fPatternEnd     = "vigil.pattern.end" // end of the last bucket
	fPatternID      = "vigil.pattern.id"  // the document id, to page on
	fPatternBuckets = "vigil.pattern.buckets"
)

// patternPrefix derives the pattern indices' prefix from the log indices':
// "vigil-logs-" gives "vigil-patterns-"; any other "<name>-" gives
// "<name>_patterns-", which "<name>-*" does not match.
func patternPrefix(logPrefix string) string {
	name := strings.TrimRight(logPrefix, "-_.")
	if base, ok := strings.CutSuffix(name, "-logs"); ok {
		return base + "-patterns-"
	}
	return name + "_patterns-"
}

func (s *Store) patternIndex(day int64) string {
	return s.patPrefix + time.Unix(day*86400, 0).UTC().Format(dayLayout)
}

func patternMapping() map[string]any {
	kw := keyword()
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date_nanos"},
			"log":        object(map[string]any{"level": kw}),
			"service":    object(map[string]any{"name": kw}),
			"host":       object(map[string]any{"name": kw}),
			"vigil": object(map[string]any{
				"grade":  map[string]any{"type": "byte"},
				"env":    kw,
				"source": kw,
				"pattern": object(map[string]any{
					"id":      kw,
					"level":   kw,
					"text":    map[string]any{"type": "keyword", "ignore_above": labelsIgnoreAbove},
					"end":     map[string]any{"type": "date_nanos"},
					"buckets": map[string]any{"type": "object", "enabled": false},
				}),
			}),
		},
	}
}

// patternTemplateBody is the index template of the pattern indices.
func (s *Store) patternTemplateBody() map[string]any {
	settings := map[string]any{"number_of_shards": s.opts.Shards, "number_of_replicas": s.opts.Replicas}
	if s.ilm && s.opts.Retention > 0 {
		settings["index.lifecycle.name"] = s.name
	}
	return map[string]any{
		"index_patterns": []string{s.patPrefix + "*"},
		"priority":       100 + len(s.patPrefix),
		"version":        templateVersion,
		"template":       map[string]any{"settings": settings, "mappings": patternMapping()},
		"_meta":          map[string]any{"managed_by": "vigil", "description": "Vigil log patterns mined at ingest, one index per UTC day"},
	}
}

func (s *Store) installPatternTemplate(ctx context.Context) error {
	name := strings.TrimRight(s.patPrefix, "-_.")
	if err := s.c.PutJSON(ctx, "/_index_template/"+name, s.patternTemplateBody()); err != nil {
		return fmt.Errorf("cannot install index template %s: %w", name, err)
	}
	return nil
}

// patternDoc is one document and its bulk action.
type patternDoc struct {
	index, id string
	body      []byte
}

// WritePatterns indexes recs, one document per record and day. A
// document's id is a hash of its content, so writing the same records
// again (a retried flush) adds nothing.
func (s *Store) WritePatterns(ctx context.Context, recs []storage.PatternRecord) error {
	var docs []patternDoc
	for _, r := range recs {
		var err error
		storage.SplitPatternDays(r.Buckets, func(day int64, bs []storage.PatternCount) {
			d, e := encodePatternDoc(&r, bs)
			d.index = s.patternIndex(day)
			docs = append(docs, d)
			err = cmp.Or(err, e)
		})
		if err != nil {
			return err
		}
	}
	idx := make([]int, len(docs))
	for i := range idx {
		idx[i] = i
	}
	for len(idx) > 0 {
		n := min(len(idx), s.opts.BulkMaxDocs)
		batch := idx[:n]
		idx = idx[n:]
		body := func(idx []int) []byte {
			var b []byte
			for _, i := range idx {
				b = fmt.Appendf(b, `{"create":{"_index":%q,"_id":%q}}`+"\n", docs[i].index, docs[i].id)
				b = append(b, docs[i].body...)
				b = append(b, '\n')
			}
			return b
		}
		err := s.bulk.Send(ctx, batch, body, func(i int, r es.ItemResult) error {
			switch r.Outcome {
			case es.Created, es.Duplicate:
				return nil
			}
			return fmt.Errorf("cannot index pattern document into %s: status %d: %s", docs[i].index, r.Status, r.Reason)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func encodePatternDoc(r *storage.PatternRecord, bs []storage.PatternCount) (patternDoc, error) {
	ts := make([]int64, len(bs))
	cs := make([]int64, len(bs))
	h := fnv.New128a()
	h.Write([]byte(r.Labels.String()))
	h.Write([]byte{0})
	h.Write([]byte(r.Level))
	h.Write([]byte{0})
	h.Write([]byte(r.Pattern))
	for i, b := range bs {
		ts[i], cs[i] = b.T/storage.PatternBucket, b.Count
		h.Write(strconv.AppendInt(strconv.AppendInt([]byte{0}, b.T, 10), b.Count, 36))
	}
	id := hex.EncodeToString(h.Sum(nil))
	src := map[string]any{}
	set := func(path string, v any) {
		m := src
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			next, _ := m[p].(map[string]any)
			if next == nil {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	set(fTimestamp, string(appendTime(nil, bs[0].T)))
	for _, l := range r.Labels {
		f, ok := labelField(l.Name)
		if !ok {
			continue
		}
		if f == fGrade {
			g, err := strconv.Atoi(l.Value)
			if err != nil || g < 0 || g > maxGrade {
				continue
			}
			set(f, g)
			continue
		}
		set(f, l.Value)
	}
	set(fPatternID, id)
	set(fPatternLevel, r.Level)
	set(fPatternText, r.Pattern)
	set(fPatternEnd, string(appendTime(nil, bs[len(bs)-1].T+storage.PatternBucket)))
	set(fPatternBuckets, map[string]any{"t": ts, "c": cs})
	b, err := json.Marshal(src)
	return patternDoc{id: id, body: b}, err
}

// patternPageSize is the hits fetched per search: Elasticsearch's
// default max_result_window.
const patternPageSize = 10_000

// ReadPatterns searches the pattern indices of [start, end) for the
// documents of streams matching ms.
func (s *Store) ReadPatterns(ctx context.Context, start, end int64, ms []*model.LabelMatcher, fn func(*storage.PatternRecord)) error {
	if end <= start {
		return nil
	}
	filter := []any{}
	if end < math.MaxInt64 {
		filter = append(filter, map[string]any{"range": map[string]any{fTimestamp: map[string]any{
			"lt": string(appendTime(nil, end)), "format": "strict_date_optional_time_nanos"}}})
	}
	if start > 0 {
		filter = append(filter, map[string]any{"range": map[string]any{fPatternEnd: map[string]any{
			"gt": string(appendTime(nil, start)), "format": "strict_date_optional_time_nanos"}}})
	}
	var mustNot []any
	exact := true
	for _, m := range ms {
		f, n, ok, none := matcherClauses(m)
		if none {
			return nil
		}
		exact = exact && ok
		filter = append(filter, f...)
		mustNot = append(mustNot, n...)
	}
	b := map[string]any{"filter": filter}
	if len(mustNot) > 0 {
		b["must_not"] = mustNot
	}
	// A document's buckets all lie in the day of its index.
	indices := s.patPrefix + "*"
	const day = int64(24 * time.Hour)
	if start > 0 && end < math.MaxInt64 && end-start <= maxListedDays*day {
		var sb strings.Builder
		for d := indexDay(start); d <= indexDay(end-1); d++ {
			if sb.Len() > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(s.patternIndex(d))
		}
		indices = sb.String()
	}
	path := "/" + indices + "/_search?" + searchParams + "&filter_path=hits.hits._source,hits.hits.sort"
	req := map[string]any{
		"query": map[string]any{"bool": b}, "size": patternPageSize, "track_total_hits": false,
		"sort": []any{
			map[string]any{fTimestamp: map[string]any{"order": "asc", "unmapped_type": "date_nanos"}},
			map[string]any{fPatternID: map[string]any{"order": "asc", "unmapped_type": "keyword"}},
		},
	}
	lc := labelCache{}
	var rec storage.PatternRecord
	return s.searchAfter(ctx, "patterns", path, req, patternPageSize, func(h *fastjson.Value) (bool, error) {
		if decodePatternHit(h.Get("_source"), &rec, lc) && (exact || model.MatchLabels(ms, rec.Labels)) {
			fn(&rec)
		}
		return true, nil
	})
}

// decodePatternHit fills rec from a document's source; false for a
// document that is not one.
func decodePatternHit(src *fastjson.Value, rec *storage.PatternRecord, lc labelCache) bool {
	if src == nil {
		return false
	}
	var vals [6][]byte
	for i, lf := range labelFields {
		vals[i] = str(src, strings.Split(lf.field, ".")...)
	}
	rec.Labels = lc.get(&vals)
	rec.Level = string(str(src, "vigil", "pattern", "level"))
	rec.Pattern = string(str(src, "vigil", "pattern", "text"))
	bk := src.Get("vigil", "pattern", "buckets")
	if bk == nil {
		bk = src.Get(fPatternBuckets)
	}
	if bk == nil {
		return false
	}
	ts, cs := bk.GetArray("t"), bk.GetArray("c")
	if len(ts) != len(cs) || len(ts) == 0 {
		return false
	}
	rec.Buckets = rec.Buckets[:0]
	for i := range ts {
		rec.Buckets = append(rec.Buckets, storage.PatternCount{T: ts[i].GetInt64() * storage.PatternBucket, Count: cs[i].GetInt64()})
	}
	return true
}
