package esstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/binenc"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Mined patterns (storage.PatternWriter) live in daily indices of their
// own, <patterns prefix>YYYY.MM.DD ("vigil-patterns-" beside the default
// "vigil-logs-"), one document per stream × level × pattern × UTC hour and
// writer: the stream's labels in the fields log documents use, so that
// selectors translate the same way, and the lines per 10 s bucket in
// vigil.pattern.buckets (binary, not indexed; see encodeBuckets). The store
// keeps the documents of the last hours in memory (patternHours) and each
// flush overwrites the documents it adds to with their whole counts, so an
// hour of patterns is a few thousand documents however many flushes fed
// it, and a retried flush counts nothing twice. Every Store writes its own
// documents (their ids include a random writer id), so ingesters mining
// the same stream never overwrite each other's counts. Retention deletes
// them with the log indices of their day.

// Field names of a pattern document.
const (
	fPatternText    = "vigil.pattern.text"
	fPatternLevel   = "vigil.pattern.level"
	fPatternEnd     = "vigil.pattern.end" // end of the document's hour
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
					"buckets": map[string]any{"type": "binary"},
				}),
			}),
		},
	}
}

// patternTemplateBody is the index template of the pattern indices.
func (s *Store) patternTemplateBody() map[string]any {
	settings := map[string]any{"number_of_shards": s.opts.Shards, "number_of_replicas": s.opts.Replicas}
	if s.ilm && s.retention.Period() > 0 {
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

// patternDoc is one document and where it goes.
type patternDoc struct {
	index, id string
	body      []byte
}

// patternHours holds the pattern documents this Store wrote for recent
// hours, to add each flush's counts to.
type patternHours struct {
	mu     sync.Mutex // one flush at a time
	writer string     // random, in every document id
	seq    uint64     // numbers documents: one forgotten and written again is a new one
	docs   map[hourKey]*hourDoc
}

type hourKey struct {
	labels, level, pattern string
	hour                   int64
}

type hourDoc struct {
	seq     uint64
	labels  model.Labels
	buckets map[int64]int64 // bucket start (Unix ns) → lines
}

// keepHours: documents of hours that ended longer ago are forgotten; late
// lines for them start a new document.
const keepHours = 2

// maxHourDocs bounds the documents kept in memory (a new pattern on every
// line would otherwise add one per line). Beyond it, documents are
// forgotten at random: their next counts go to a new document, which
// readers add up with the old one, so nothing is miscounted.
var maxHourDocs = 200_000

// WritePatterns adds recs to this Store's documents of their stream,
// level, pattern and hour, and writes those documents whole.
func (s *Store) WritePatterns(ctx context.Context, recs []storage.PatternRecord) error {
	ph := &s.patHours
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if ph.docs == nil {
		ph.docs = map[hourKey]*hourDoc{}
		var b [8]byte
		rand.Read(b[:])
		ph.writer = hex.EncodeToString(b[:])
	}
	// The counts become the store's only once Elasticsearch has them: a
	// failed flush is handed again by the caller.
	next := map[hourKey]*hourDoc{}
	var keys []hourKey
	for _, r := range recs {
		k := hourKey{labels: r.Labels.String(), level: r.Level, pattern: r.Pattern}
		splitHours(r.Buckets, func(hour int64, bs []storage.PatternCount) {
			k.hour = hour
			d := next[k]
			if d == nil {
				d = &hourDoc{labels: r.Labels, buckets: map[int64]int64{}}
				if old := ph.docs[k]; old != nil {
					d.seq = old.seq
					maps.Copy(d.buckets, old.buckets)
				} else {
					ph.seq++
					d.seq = ph.seq
				}
				next[k] = d
				keys = append(keys, k)
			}
			for _, b := range bs {
				d.buckets[b.T] += b.Count
			}
		})
	}
	docs := make([]patternDoc, len(keys))
	for i, k := range keys {
		var err error
		if docs[i], err = s.encodePatternDoc(k, next[k], ph.writer); err != nil {
			return err
		}
	}
	if err := s.sendPatternDocs(ctx, docs); err != nil {
		return err
	}
	maps.Copy(ph.docs, next)
	oldest := time.Now().Add(-keepHours*time.Hour).UnixNano() - int64(time.Hour)
	for k := range ph.docs {
		if k.hour < oldest || len(ph.docs) > maxHourDocs {
			delete(ph.docs, k)
		}
	}
	return nil
}

func (s *Store) sendPatternDocs(ctx context.Context, docs []patternDoc) error {
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
				b = fmt.Appendf(b, `{"index":{"_index":%q,"_id":%q}}`+"\n", docs[i].index, docs[i].id)
				b = append(b, docs[i].body...)
				b = append(b, '\n')
			}
			return b
		}
		err := s.bulk.Send(ctx, batch, body, func(i int, r es.ItemResult) error {
			if r.Outcome == es.Created {
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

// splitHours calls fn for each run of bs (sorted by T) within one UTC
// hour, with the hour's start.
func splitHours(bs []storage.PatternCount, fn func(hour int64, part []storage.PatternCount)) {
	const h = int64(time.Hour)
	hourOf := func(t int64) int64 {
		s := t - t%h
		if t < 0 && s != t {
			s -= h
		}
		return s
	}
	for i := 0; i < len(bs); {
		hour := hourOf(bs[i].T)
		j := i + 1
		for j < len(bs) && hourOf(bs[j].T) == hour {
			j++
		}
		fn(hour, bs[i:j])
		i = j
	}
}

func (s *Store) encodePatternDoc(k hourKey, d *hourDoc, writer string) (patternDoc, error) {
	h := fnv.New128a()
	h.Write([]byte(k.labels))
	h.Write([]byte{0})
	h.Write([]byte(k.level))
	h.Write([]byte{0})
	h.Write([]byte(k.pattern))
	h.Write(strconv.AppendUint(strconv.AppendInt([]byte{0}, k.hour, 10), d.seq, 10))
	h.Write([]byte(writer))
	id := hex.EncodeToString(h.Sum(nil))
	buckets := make([]storage.PatternCount, 0, len(d.buckets))
	for t, c := range d.buckets {
		buckets = append(buckets, storage.PatternCount{T: t, Count: c})
	}
	slices.SortFunc(buckets, func(a, b storage.PatternCount) int { return cmp.Compare(a.T, b.T) })
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
	set(fTimestamp, string(appendTime(nil, k.hour)))
	for _, l := range d.labels {
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
	set(fPatternLevel, k.level)
	set(fPatternText, k.pattern)
	set(fPatternEnd, string(appendTime(nil, k.hour+int64(time.Hour))))
	set(fPatternBuckets, base64.StdEncoding.EncodeToString(encodeBuckets(nil, buckets)))
	b, err := json.Marshal(src)
	return patternDoc{index: s.patternIndex(indexDay(k.hour)), id: id, body: b}, err
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
	var scratch []byte
	return s.searchAfter(ctx, "patterns", path, req, patternPageSize, func(h *fastjson.Value) (bool, error) {
		if decodePatternHit(h.Get("_source"), &rec, lc, &scratch) && (exact || model.MatchLabels(ms, rec.Labels)) {
			fn(&rec)
		}
		return true, nil
	})
}

// decodePatternHit fills rec from a document's source; false for a
// document that is not one.
func decodePatternHit(src *fastjson.Value, rec *storage.PatternRecord, lc labelCache, scratch *[]byte) bool {
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
	bk := str(src, "vigil", "pattern", "buckets")
	n := base64.StdEncoding.DecodedLen(len(bk))
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode((*scratch)[:n], bk)
	if err != nil {
		return false
	}
	var ok bool
	rec.Buckets, ok = decodeBuckets(rec.Buckets[:0], (*scratch)[:n])
	return ok && len(rec.Buckets) > 0
}

// encodeBuckets appends bs (sorted by T) as varints: per bucket its
// number (start / 10 s; the first since 1970, the next the difference from
// the previous) and its lines. A dense hour is about 1 KB, a tenth of the
// same counts as a JSON object.
func encodeBuckets(b []byte, bs []storage.PatternCount) []byte {
	prev := int64(0)
	for _, x := range bs {
		n := x.T / storage.PatternBucket
		b = binary.AppendVarint(b, n-prev)
		b = binary.AppendUvarint(b, uint64(x.Count)) // #nosec G115 -- a count, never negative
		prev = n
	}
	return b
}

func decodeBuckets(bs []storage.PatternCount, b []byte) ([]storage.PatternCount, bool) {
	r := binenc.NewReader(b)
	prev := int64(0)
	const maxBucket = math.MaxInt64 / storage.PatternBucket
	for r.More() {
		prev += r.Varint()
		if prev > maxBucket || prev < -maxBucket {
			return bs, false // not a time Vigil writes
		}
		bs = append(bs, storage.PatternCount{T: prev * storage.PatternBucket, Count: int64(r.Uvarint())}) // #nosec G115 -- a count Vigil wrote from an int64
	}
	return bs, r.Err() == nil
}
