package spanstore

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/model"
)

// A segment is the sealed, immutable index of a range [start, end) of a
// partition's span file, in index-<start>-<end>.idx (hex offsets) beside
// it. It is written to a temporary file, synced and renamed, so it is whole
// or absent; its trailing CRC-32C is checked at open, and a segment that is
// missing, torn or corrupt is deleted and its range indexed again from the
// span file. Layout (integers little-endian, docs/format/spanstore.md):
//
//	header: magic "VIGILSX1" | u64 start | u64 end | u32 names | u32 ops
//	        | u32 spans | u32 traces | u32 terms | i64 min start | i64 max start
//	names:  (uvarint length | bytes)…          services and operations
//	ops:    (u32 service | u32 operation | u8 kind)…
//	metas:  spans × metaSize bytes, sorted by trace id, span id
//	dict:   (uvarint length | term | uvarint offset | uvarint length | uvarint count)…
//	        sorted by term; "key\x00value" for tags, "\xff"+name for services
//	postings: per term, ascending meta ordinals as uvarint deltas
//	trailer: u32 CRC-32C of everything before it
//
// In memory a segment keeps its names and operations, a Bloom filter of its
// trace ids, every traceSample-th trace id and every termSample-th term:
// each lookup then reads one small range of the file.

const (
	segMagic     = "VIGILSX1"
	segHeader    = 8 + 8 + 8 + 5*4 + 8 + 8
	metaSize     = 16 + 8 + 8 + 8 + 8 + 8 + 4 + 4 + 4 + 4 + 1 + 1
	traceSample  = 64
	termSample   = 32
	segPrefix    = "index-"
	segSuffix    = ".idx"
	tmpSuffix    = fsutil.TmpSuffix
	defaultSeal  = 100_000
	segReadChunk = 256 // metas read at once by scans
)

type segOp struct {
	service, op uint32
	kind        model.SpanKind
}

type segment struct {
	f          *os.File
	path       string
	start, end int64 // range of the span file indexed
	fileSize   int64
	n          int // spans

	names              []string
	strs               map[string]uint32
	ops                []segOp
	minStart, maxStart int64

	metasOff    int64
	traceKeys   []model.TraceID // trace id of meta i*traceSample
	traces      bloom
	dictOff     int64
	dictEnd     int64
	termKeys    []string // term i*termSample
	termOffs    []int64  // file offset of its dictionary entry
	postingsOff int64
}

func segName(start, end int64) string {
	return fmt.Sprintf("%s%016x-%016x%s", segPrefix, start, end, segSuffix)
}

func parseSegName(name string) (start, end int64, ok bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, 0, false
	}
	_, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), "%016x-%016x", &start, &end)
	return start, end, err == nil && start < end
}

func putMeta(b []byte, m *spanMeta) {
	copy(b[0:], m.trace[:])
	copy(b[16:], m.span[:])
	copy(b[24:], m.parent[:])
	le := binary.LittleEndian
	le.PutUint64(b[32:], uint64(m.start))
	le.PutUint64(b[40:], uint64(m.dur))
	le.PutUint64(b[48:], uint64(m.loc.off))
	le.PutUint32(b[56:], m.loc.size)
	le.PutUint32(b[60:], m.loc.pos)
	le.PutUint32(b[64:], m.service)
	le.PutUint32(b[68:], m.op)
	b[72] = byte(m.kind)
	b[73] = 0
	if m.isErr {
		b[73] = 1
	}
}

func getMeta(b []byte) spanMeta {
	var m spanMeta
	copy(m.trace[:], b[0:16])
	copy(m.span[:], b[16:24])
	copy(m.parent[:], b[24:32])
	le := binary.LittleEndian
	m.start = int64(le.Uint64(b[32:]))
	m.dur = int64(le.Uint64(b[40:]))
	m.loc = spanLoc{off: int64(le.Uint64(b[48:])), size: le.Uint32(b[56:]), pos: le.Uint32(b[60:])}
	m.service = le.Uint32(b[64:])
	m.op = le.Uint32(b[68:])
	m.kind = model.SpanKind(b[72])
	m.isErr = b[73] == 1
	return m
}

// segReader reads a segment file from its start, keeping its offset and
// checksum.
type segReader struct {
	r       *bufio.Reader
	crc     hash.Hash32
	off     int64
	err     error
	scratch [binary.MaxVarintLen64]byte
}

func (r *segReader) full(b []byte) []byte {
	if r.err != nil {
		return b
	}
	n, err := io.ReadFull(r.r, b)
	_, _ = r.crc.Write(b[:n]) // a hash's Write never fails
	r.off += int64(n)
	r.err = err
	return b
}

func (r *segReader) u32() uint32 { return binary.LittleEndian.Uint32(r.full(r.scratch[:4])) }
func (r *segReader) u64() uint64 { return binary.LittleEndian.Uint64(r.full(r.scratch[:8])) }

// uvarint reads a varint: it decodes the bytes ahead without consuming
// them, then consumes the varint's.
func (r *segReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	ahead, err := r.r.Peek(binary.MaxVarintLen64)
	v, n := binary.Uvarint(ahead)
	switch {
	case n == 0 && err != nil: // cut short
		r.err = err
		if err == io.EOF {
			r.err = io.ErrUnexpectedEOF
		}
		return 0
	case n <= 0:
		r.err = errCorrupt
		return 0
	}
	r.full(r.scratch[:n])
	return v
}

func (r *segReader) string(limit int64) string {
	n := r.uvarint()
	if n > uint64(limit) {
		r.err = errCorrupt
		return ""
	}
	return string(r.full(make([]byte, n)))
}

// openSegment opens the segment at path, checking it whole and building
// its in-memory summary.
func openSegment(path string) (*segment, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot open span index %s: %w", path, err)
	}
	sg, err := readSegment(f)
	if err != nil {
		_ = f.Close() // the read error is the one to report
		return nil, fmt.Errorf("span index %s: %w", path, err)
	}
	sg.f, sg.path = f, path
	return sg, nil
}

func readSegment(f *os.File) (*segment, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	r := &segReader{r: bufio.NewReaderSize(f, 1<<20), crc: crc32.New(crcTable)}
	var magic [8]byte
	if string(r.full(magic[:])) != segMagic || r.err != nil {
		return nil, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	sg := &segment{fileSize: size, strs: map[string]uint32{}}
	sg.start, sg.end = int64(r.u64()), int64(r.u64())
	nNames, nOps, nSpans, nTraces, nTerms := r.u32(), r.u32(), r.u32(), r.u32(), r.u32()
	sg.minStart, sg.maxStart = int64(r.u64()), int64(r.u64())
	// Every item takes at least a byte: counts beyond the size are corrupt.
	if r.err != nil || int64(nNames)+int64(nOps)*9+int64(nSpans)*metaSize+int64(nTerms) > size || nTraces > nSpans {
		return nil, fmt.Errorf("%w: bad header", errCorrupt)
	}
	sg.n = int(nSpans)
	sg.names = make([]string, nNames)
	for i := range sg.names {
		sg.names[i] = r.string(size)
		sg.strs[sg.names[i]] = uint32(i)
	}
	sg.ops = make([]segOp, nOps)
	var b [9]byte
	for i := range sg.ops {
		r.full(b[:])
		sg.ops[i] = segOp{binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint32(b[4:]), model.SpanKind(b[8])}
		if sg.ops[i].service >= nNames || sg.ops[i].op >= nNames {
			return nil, fmt.Errorf("%w: bad operation", errCorrupt)
		}
	}
	sg.metasOff = r.off
	sg.traces = newBloom(int(nTraces))
	sg.traceKeys = make([]model.TraceID, 0, sg.n/traceSample+1)
	var rec [metaSize]byte
	var prev model.TraceID
	for i := 0; i < sg.n && r.err == nil; i++ {
		r.full(rec[:])
		var id model.TraceID
		copy(id[:], rec[:16])
		if i%traceSample == 0 {
			sg.traceKeys = append(sg.traceKeys, id)
		}
		if i == 0 || id != prev {
			sg.traces.add(id)
			prev = id
		}
	}
	sg.dictOff = r.off
	var term, last []byte
	for i := 0; i < int(nTerms) && r.err == nil; i++ {
		off := r.off
		n := r.uvarint()
		if n > uint64(size) {
			return nil, fmt.Errorf("%w: bad term", errCorrupt)
		}
		term = r.full(slices.Grow(term[:0], int(n))[:n])
		r.uvarint()
		r.uvarint()
		r.uvarint()
		if i > 0 && bytes.Compare(term, last) <= 0 {
			return nil, fmt.Errorf("%w: terms out of order", errCorrupt)
		}
		last = append(last[:0], term...)
		if i%termSample == 0 {
			sg.termKeys = append(sg.termKeys, string(term))
			sg.termOffs = append(sg.termOffs, off)
		}
	}
	sg.dictEnd = r.off
	sg.postingsOff = r.off
	if rest := size - 4 - r.off; rest < 0 || r.err != nil {
		return nil, fmt.Errorf("%w: truncated", errCorrupt)
	} else if _, err := io.CopyN(r.crc, r.r, rest); err != nil {
		return nil, fmt.Errorf("%w: truncated", errCorrupt)
	}
	want := r.crc.Sum32()
	var tr [4]byte
	if _, err := io.ReadFull(r.r, tr[:]); err != nil || binary.LittleEndian.Uint32(tr[:]) != want {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, r.err)
	}
	return sg, nil
}

// openSegments opens the segments of the partition in dir whose ranges
// chain from offset 0 and lie within the span file's size, deleting the
// others and leftover temporary files; it returns them in order and the
// offset where the head starts.
func openSegments(dir string, size int64, warn func(msg string, args ...any)) ([]*segment, int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list partition %s: %w", dir, err)
	}
	type cand struct {
		name       string
		start, end int64
	}
	var cands []cand
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			_ = os.Remove(filepath.Join(dir, e.Name())) // best effort: a leftover temporary file is skipped again next time
			continue
		}
		if start, end, ok := parseSegName(e.Name()); ok {
			cands = append(cands, cand{e.Name(), start, end})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.start, b.start) })
	var segs []*segment
	next := int64(0)
	for _, c := range cands {
		path := filepath.Join(dir, c.name)
		if c.start == next && c.end <= size {
			sg, err := openSegment(path)
			if err == nil && sg.start == c.start && sg.end == c.end {
				segs = append(segs, sg)
				next = c.end
				continue
			}
			if err == nil {
				_ = sg.f.Close() // the mismatch is the error to report
				err = fmt.Errorf("span index %s: range does not match its name", path)
			}
			warn("span store: dropping span index; its spans are indexed again", "path", path, "err", err)
		} else {
			warn("span store: dropping span index outside the span file; its spans are indexed again", "path", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			_ = closeSegments(segs) // the remove error is the one to report
			return nil, 0, fmt.Errorf("cannot remove span index %s: %w", path, err)
		}
	}
	return segs, next, nil
}

func closeSegments(segs []*segment) error {
	var errs []error
	for _, sg := range segs {
		errs = append(errs, sg.f.Close())
	}
	return errors.Join(errs...)
}
