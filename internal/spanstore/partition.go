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
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
)

// A partition holds the spans that start on one UTC day: one append-only
// file of block records (block.go), dir/YYYY-MM-DD/spans.dat, the sealed
// index segments of its older blocks (segment.go) and the in-memory index
// of its newer ones (head.go), rebuilt from the file at open. The file is
// the write-ahead log and the data at once: a record is durable once Write
// has synced it, and a torn tail is cut off at open.

const (
	dataFile  = "spans.dat"
	dayLayout = "2006-01-02"
	nsPerDay  = int64(24 * time.Hour)
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type partition struct {
	day  int64 // days since the Unix epoch
	dir  string
	f    *os.File
	size int64 // end of the last whole record; written only under Store.writeMu

	sealSpans int // head size that triggers sealing

	mu   sync.RWMutex // guards h and segs; segs also change only under Store.writeMu
	h    *head
	segs []*segment // sealed, in file order, chaining from offset 0 to h.start
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

// openPartition opens or creates the partition in dir: it opens the sealed
// index segments, indexes the blocks after them into the head, cuts off a
// torn or corrupt tail and seals the head if it is already full.
func openPartition(day int64, dir string, sealSpans int, warn func(string, ...any)) (p *partition, truncated int64, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, 0, fmt.Errorf("cannot create partition %s: %w", dir, err)
	}
	path := filepath.Join(dir, dataFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open span file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close() // the open error is the one to report
		return nil, 0, fmt.Errorf("cannot stat span file %s: %w", path, err)
	}
	segs, headStart, err := openSegments(dir, st.Size(), warn)
	if err != nil {
		_ = f.Close() // the open error is the one to report
		return nil, 0, err
	}
	p = &partition{day: day, dir: dir, f: f, sealSpans: sealSpans, h: newHead(headStart, 0), segs: segs}
	fail := func(err error) (*partition, int64, error) {
		return nil, 0, errors.Join(err, p.close())
	}
	good, err := p.load(headStart)
	if err != nil {
		return fail(fmt.Errorf("cannot read span file %s: %w", path, err))
	}
	if st.Size() > good {
		truncated = st.Size() - good
		if err := f.Truncate(good); err != nil {
			return fail(fmt.Errorf("cannot truncate torn tail of %s: %w", path, err))
		}
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("cannot sync %s: %w", path, err))
		}
	}
	p.size = good
	if err := p.maybeSeal(); err != nil {
		return fail(err)
	}
	return p, truncated, nil
}

func (p *partition) close() error {
	return errors.Join(p.f.Close(), closeSegments(p.segs))
}

// spans is the number of spans indexed.
func (p *partition) spans() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := len(p.h.metas)
	for _, sg := range p.segs {
		n += sg.n
	}
	return n
}

// indexBytes is the size of the sealed segments.
func (p *partition) indexBytes() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var n int64
	for _, sg := range p.segs {
		n += sg.fileSize
	}
	return n
}

// maybeSeal writes the head out as a segment once it holds sealSpans spans;
// the caller holds Store.writeMu (or is the only user, at open).
func (p *partition) maybeSeal() error {
	if len(p.h.metas) < p.sealSpans {
		return nil
	}
	return p.seal()
}

// seal writes the head out as a segment, if it holds spans; the caller
// holds Store.writeMu (or is the only user).
func (p *partition) seal() error {
	if len(p.h.metas) == 0 || p.size == p.h.start {
		return nil
	}
	sg, err := writeSegment(p.dir, p.h, p.size)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.segs = append(p.segs, sg)
	p.h = newHead(p.size, p.sealSpans) // a busy partition: size it once
	p.mu.Unlock()
	return nil
}

// stored reports whether span k is indexed; the caller holds Store.writeMu.
// cache keeps the span ids of traces looked up in the segments.
func (p *partition) stored(k spanKey, cache map[model.TraceID][]model.SpanID) (bool, error) {
	if _, ok := p.h.byKey[k]; ok {
		return true, nil
	}
	ids, ok := cache[k.trace]
	if !ok {
		var ms []spanMeta
		for _, sg := range p.segs {
			var err error
			if ms, err = sg.traceMetas(k.trace, ms); err != nil {
				return false, err
			}
		}
		for _, m := range ms {
			ids = append(ids, m.span)
		}
		cache[k.trace] = ids
	}
	return slices.Contains(ids, k.span), nil
}

// load indexes every whole, valid record from off into the head and
// returns the offset after the last one.
func (p *partition) load(off int64) (int64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(p.f, off, 1<<62), 1<<20)
	var hdr [recHeader]byte
	var buf []byte
	cache := map[model.TraceID][]model.SpanID{}
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
			dup, err := p.stored(spanKey{spans[i].TraceID, spans[i].SpanID}, cache)
			if err != nil {
				return off, err
			}
			if !dup {
				p.h.add(&spans[i], locs[i])
			}
		}
		off += int64(recHeader + n0)
		// Seal while loading, so that replaying a long tail (after an
		// index was lost) does not hold it all in memory.
		if len(p.h.metas) >= p.sealSpans {
			p.size = off
			if err := p.maybeSeal(); err != nil {
				return off, err
			}
			clear(cache)
		}
	}
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

// forEachTag calls f for every searchable key=value of s, as the term
// "key\x00value" built in buf: span, process and event attributes, plus
// span.kind and error=true as Jaeger shows them. term is valid until f
// returns.
func forEachTag(s *model.Span, buf []byte, f func(term []byte)) {
	attr := func(a model.TypedAttr) {
		buf = append(append(buf[:0], a.Key...), 0)
		buf = a.AppendValueString(buf)
		f(buf)
	}
	for _, a := range s.Attributes {
		attr(a)
	}
	for _, a := range s.Process {
		attr(a)
	}
	for _, e := range s.Events {
		for _, a := range e.Attributes {
			attr(a)
		}
	}
	if k := s.Kind.Name(); k != "" {
		f(append(buf[:0], "span.kind\x00"+k...))
	}
	if s.StatusCode == 2 {
		f(append(buf[:0], "error\x00true"...))
	}
}

// readSpans reads the spans at the given metas, reading and decompressing
// each block once, and charges the decompressed bytes to budget.
func (p *partition) readSpans(budget querylimit.Budget, ms []spanMeta, out []model.Span) ([]model.Span, error) {
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
			if err := budget.Charge(len(rec) + len(raw)); err != nil {
				return out, err
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
