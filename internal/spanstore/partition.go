package spanstore

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// A partition holds the spans that start on one UTC day: one append-only
// file of block records (block.go), dir/YYYY-MM-DD/spans.dat, and an
// in-memory index rebuilt from the file at open. The file is the
// write-ahead log and the data at once: a record is durable once Write has
// synced it, and a torn tail is cut off at open.

const (
	dataFile  = "spans.dat"
	dayLayout = "2006-01-02"
	nsPerDay  = int64(24 * time.Hour)
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type spanKey struct {
	trace model.TraceID
	span  model.SpanID
}

// spanMeta is what the index keeps of one span: enough to filter a search and
// compute dependencies without reading the record.
type spanMeta struct {
	trace   model.TraceID
	span    model.SpanID
	parent  model.SpanID
	service uint32
	op      uint32
	kind    model.SpanKind
	isErr   bool
	start   int64
	dur     int64
	loc     spanLoc
}

type opKey struct {
	op   uint32
	kind model.SpanKind
}

type partition struct {
	day  int64 // days since the Unix epoch
	dir  string
	f    *os.File
	size int64 // end of the last whole record; written only under Store.writeMu

	mu        sync.RWMutex
	metas     []spanMeta
	byKey     map[spanKey]uint32 // → index in metas; dedup and parent lookup
	traces    map[model.TraceID][]uint32
	strs      map[string]uint32 // services and operation names
	names     []string
	byService map[uint32][]uint32
	ops       map[uint32]map[opKey]struct{}
	tags      map[string][]uint32 // "key\x00value" → span indices, ascending
}

func dayOf(ns int64) int64 {
	d := ns / nsPerDay
	if ns < 0 && ns%nsPerDay != 0 {
		d--
	}
	return d
}

func dayName(day int64) string { return time.Unix(day*86400, 0).UTC().Format(dayLayout) }

func parseDayName(name string) (int64, bool) {
	t, err := time.Parse(dayLayout, name)
	if err != nil {
		return 0, false
	}
	return t.Unix() / 86400, true
}

func newPartition(day int64, dir string) *partition {
	return &partition{
		day: day, dir: dir,
		byKey:     make(map[spanKey]uint32),
		traces:    make(map[model.TraceID][]uint32),
		strs:      make(map[string]uint32),
		byService: make(map[uint32][]uint32),
		ops:       make(map[uint32]map[opKey]struct{}),
		tags:      make(map[string][]uint32),
	}
}

// openPartition opens or creates the partition in dir, rebuilding its index
// and cutting off a torn or corrupt tail.
func openPartition(day int64, dir string) (p *partition, truncated int64, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("cannot create partition %s: %w", dir, err)
	}
	path := filepath.Join(dir, dataFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open span file %s: %w", path, err)
	}
	p = newPartition(day, dir)
	p.f = f
	good, err := p.load()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("cannot read span file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("cannot stat span file %s: %w", path, err)
	}
	if st.Size() > good {
		truncated = st.Size() - good
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("cannot truncate torn tail of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("cannot sync %s: %w", path, err)
		}
	}
	p.size = good
	return p, truncated, nil
}

// load indexes every whole, valid record and returns the offset after the
// last one.
func (p *partition) load() (int64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(p.f, 0, 1<<62), 1<<20)
	var off int64
	var hdr [recHeader]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return off, nil
			}
			return off, err
		}
		n0 := int(binary.LittleEndian.Uint32(hdr[0:]))
		if n0 > maxRecord {
			return off, nil
		}
		if cap(buf) < n0 {
			buf = make([]byte, n0)
		}
		buf = buf[:n0]
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return off, nil
			}
			return off, err
		}
		rec := append(hdr[:], buf...)
		raw, err := blockData(rec)
		if err != nil {
			return off, nil
		}
		// Decode the whole block first: a block is indexed whole or not at all.
		var spans []model.Span
		var locs []spanLoc
		for pos := 0; pos < len(raw); {
			s, n, err := spanAt(raw, uint32(pos))
			if err != nil {
				return off, nil
			}
			spans = append(spans, s)
			locs = append(locs, spanLoc{off: off, size: uint32(recHeader + n0), pos: uint32(pos)})
			pos += n
		}
		for i := range spans {
			if _, dup := p.byKey[spanKey{spans[i].TraceID, spans[i].SpanID}]; !dup {
				p.add(&spans[i], locs[i])
			}
		}
		off += int64(recHeader + n0)
	}
}

func (p *partition) intern(s string) uint32 {
	if id, ok := p.strs[s]; ok {
		return id
	}
	id := uint32(len(p.names))
	p.names = append(p.names, s)
	p.strs[s] = id
	return id
}

// add indexes span s stored at off; the caller holds p.mu for writing (or is
// the only user, at open).
func (p *partition) add(s *model.Span, loc spanLoc) {
	idx := uint32(len(p.metas))
	m := spanMeta{
		trace: s.TraceID, span: s.SpanID, parent: s.ParentSpanID,
		service: p.intern(s.Service), op: p.intern(s.Name), kind: s.Kind,
		isErr: isError(s), start: s.StartTime, dur: s.Duration, loc: loc,
	}
	p.metas = append(p.metas, m)
	p.byKey[spanKey{s.TraceID, s.SpanID}] = idx
	p.traces[s.TraceID] = append(p.traces[s.TraceID], idx)
	p.byService[m.service] = append(p.byService[m.service], idx)
	ops := p.ops[m.service]
	if ops == nil {
		ops = make(map[opKey]struct{})
		p.ops[m.service] = ops
	}
	ops[opKey{m.op, m.kind}] = struct{}{}
	forEachTag(s, func(k, v string) {
		key := k + "\x00" + v
		l := p.tags[key]
		if n := len(l); n > 0 && l[n-1] == idx {
			return // same key=value twice on one span
		}
		p.tags[key] = append(l, idx)
	})
}

func isError(s *model.Span) bool {
	if s.StatusCode == 2 {
		return true
	}
	for _, a := range s.Attributes {
		if a.Key == "error" && (a.Type == model.AttrBool && a.Int != 0 || a.Type == model.AttrString && a.Str == "true") {
			return true
		}
	}
	return false
}

// KindName is the name Jaeger gives a span kind ("" when unspecified).
func KindName(k model.SpanKind) string {
	switch k {
	case model.SpanKindInternal:
		return "internal"
	case model.SpanKindServer:
		return "server"
	case model.SpanKindClient:
		return "client"
	case model.SpanKindProducer:
		return "producer"
	case model.SpanKindConsumer:
		return "consumer"
	}
	return ""
}

// AttrString is an attribute's value as a string, as tag searches compare
// it: booleans as true/false, numbers in decimal, binary in hex.
func AttrString(a model.TypedAttr) string {
	switch a.Type {
	case model.AttrBool:
		return strconv.FormatBool(a.Int != 0)
	case model.AttrInt64:
		return strconv.FormatInt(a.Int, 10)
	case model.AttrFloat64:
		return strconv.FormatFloat(a.Float, 'g', -1, 64)
	case model.AttrBinary:
		return fmt.Sprintf("%x", a.Str)
	}
	return a.Str
}

// forEachTag calls f for every searchable key=value of s: span, process and
// event attributes, plus span.kind and error=true as Jaeger shows them.
func forEachTag(s *model.Span, f func(k, v string)) {
	for _, a := range s.Attributes {
		f(a.Key, AttrString(a))
	}
	for _, a := range s.Process {
		f(a.Key, AttrString(a))
	}
	for _, e := range s.Events {
		for _, a := range e.Attributes {
			f(a.Key, AttrString(a))
		}
	}
	if k := KindName(s.Kind); k != "" {
		f("span.kind", k)
	}
	if s.StatusCode == 2 {
		f("error", "true")
	}
}

// readSpans reads the spans at the given metas, reading and decompressing
// each block once.
func (p *partition) readSpans(ms []spanMeta, out []model.Span) ([]model.Span, error) {
	slices.SortFunc(ms, func(a, b spanMeta) int {
		return cmp.Or(cmp.Compare(a.loc.off, b.loc.off), cmp.Compare(a.loc.pos, b.loc.pos))
	})
	var rec, raw []byte
	for i, m := range ms {
		if i == 0 || m.loc.off != ms[i-1].loc.off {
			if cap(rec) < int(m.loc.size) {
				rec = make([]byte, m.loc.size)
			}
			rec = rec[:m.loc.size]
			if _, err := p.f.ReadAt(rec, m.loc.off); err != nil {
				return out, fmt.Errorf("cannot read span block at %s:%d: %w", p.dir, m.loc.off, err)
			}
			var err error
			if raw, err = blockData(rec); err != nil {
				return out, fmt.Errorf("span block at %s:%d: %w", p.dir, m.loc.off, err)
			}
		}
		s, _, err := spanAt(raw, m.loc.pos)
		if err != nil {
			return out, fmt.Errorf("span block at %s:%d, span at %d: %w", p.dir, m.loc.off, m.loc.pos, err)
		}
		out = append(out, s)
	}
	return out, nil
}
