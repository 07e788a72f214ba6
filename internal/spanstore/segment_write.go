package spanstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/fsutil"
)

// compareMeta orders metas as a segment stores them: by trace id, then span id.
func compareMeta(a, b *spanMeta) int {
	if c := bytes.Compare(a.trace[:], b.trace[:]); c != 0 {
		return c
	}
	return bytes.Compare(a.span[:], b.span[:])
}

// writeSegment writes the index of h, which covers the span file up to end,
// to dir and returns the segment, open for reading.
func writeSegment(dir string, h *head, end int64) (*segment, error) {
	order := make([]uint32, len(h.metas))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return compareMeta(&h.metas[a], &h.metas[b]) })
	rank := make([]uint32, len(order))
	for r, i := range order {
		rank[i] = uint32(r)
	}

	// Posting lists: spans visited in rank order come out ascending.
	type term struct {
		s    []byte
		list []uint32
	}
	nTerms := len(h.termOff) - 1
	terms := make([]term, 0, nTerms+len(h.byService))
	ends := make([]uint32, nTerms+1)
	for _, t := range h.spanTerms {
		ends[t+1]++
	}
	for t := 1; t < len(ends); t++ {
		ends[t] += ends[t-1]
	}
	all := make([]uint32, len(h.spanTerms))
	for r, i := range order {
		for _, t := range h.spanTermIDs(i) {
			all[ends[t]] = uint32(r)
			ends[t]++
		}
	}
	from := uint32(0)
	for t := range nTerms {
		terms = append(terms, term{h.term(uint32(t)), all[from:ends[t]]})
		from = ends[t]
	}
	for id, l := range h.byService {
		ords := make([]uint32, len(l))
		for k, idx := range l {
			ords[k] = rank[idx]
		}
		slices.Sort(ords)
		terms = append(terms, term{[]byte(serviceTerm(h.names[id])), ords})
	}
	slices.SortFunc(terms, func(a, b term) int { return bytes.Compare(a.s, b.s) })

	path := filepath.Join(dir, segName(h.start, end))
	f, err := fsutil.Create(path, 0o666)
	if err != nil {
		return nil, fmt.Errorf("cannot create span index: %w", err)
	}
	fail := func(err error) (*segment, error) {
		f.Abort()
		return nil, fmt.Errorf("cannot write span index %s: %w", f.Name(), err)
	}
	crc := crc32.New(crcTable)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)

	var ops []segOp
	for svc, set := range h.ops {
		for k := range set {
			ops = append(ops, segOp{svc, k.op, k.kind})
		}
	}
	traces, minStart, maxStart := 0, int64(0), int64(0)
	for r, i := range order {
		m := &h.metas[i]
		if r == 0 || m.trace != h.metas[order[r-1]].trace {
			traces++
		}
		if r == 0 || m.start < minStart {
			minStart = m.start
		}
		if r == 0 || m.start > maxStart {
			maxStart = m.start
		}
	}
	// Build the in-memory summary as openSegment would, while writing.
	sg := &segment{
		start: h.start, end: end, n: len(order), names: slices.Clone(h.names), strs: make(map[string]uint32, len(h.names)),
		ops: ops, minStart: minStart, maxStart: maxStart, traces: newBloom(traces),
	}
	var off int64
	put := func(p []byte) {
		_, _ = w.Write(p) // a bufio.Writer keeps its first error; Flush below returns it
		off += int64(len(p))
	}
	le := binary.LittleEndian
	hdr := make([]byte, 0, segHeader)
	hdr = append(hdr, segMagic...)
	hdr = le.AppendUint64(hdr, uint64(h.start))
	hdr = le.AppendUint64(hdr, uint64(end))
	for _, n := range []int{len(h.names), len(ops), len(order), traces, len(terms)} {
		hdr = le.AppendUint32(hdr, uint32(n))
	}
	hdr = le.AppendUint64(hdr, uint64(minStart))
	hdr = le.AppendUint64(hdr, uint64(maxStart))
	put(hdr)
	var b []byte
	for i, s := range h.names {
		sg.strs[s] = uint32(i)
		put(binenc.AppendString(b[:0], s))
	}
	for _, o := range ops {
		b = le.AppendUint32(b[:0], o.service)
		b = le.AppendUint32(b, o.op)
		put(append(b, byte(o.kind)))
	}
	sg.metasOff = off
	var rec [metaSize]byte
	for r, i := range order {
		m := &h.metas[i]
		if r%traceSample == 0 {
			sg.traceKeys = append(sg.traceKeys, m.trace)
		}
		if r == 0 || m.trace != h.metas[order[r-1]].trace {
			sg.traces.add(m.trace)
		}
		putMeta(rec[:], m)
		put(rec[:])
	}
	// Postings first into memory: the dictionary holds their offsets.
	var pbuf []byte
	type entry struct{ off, n int }
	entries := make([]entry, len(terms))
	for i, t := range terms {
		start := len(pbuf)
		prev := uint32(0)
		for _, o := range t.list {
			pbuf = binary.AppendUvarint(pbuf, uint64(o-prev))
			prev = o
		}
		entries[i] = entry{start, len(pbuf) - start}
	}
	sg.dictOff = off
	for i, t := range terms {
		if i%termSample == 0 {
			sg.termKeys = append(sg.termKeys, string(t.s))
			sg.termOffs = append(sg.termOffs, off)
		}
		b = binenc.AppendBytes(b[:0], t.s)
		b = binary.AppendUvarint(b, uint64(entries[i].off))
		b = binary.AppendUvarint(b, uint64(entries[i].n))
		b = binary.AppendUvarint(b, uint64(len(t.list)))
		put(b)
	}
	sg.dictEnd, sg.postingsOff = off, off
	put(pbuf)
	sg.fileSize = off + 4
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if _, err := f.Write(le.AppendUint32(nil, crc.Sum32())); err != nil {
		return fail(err)
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("cannot write span index: %w", err)
	}
	if sg.f, err = os.Open(path); err != nil { // #nosec G304 -- the operator's data directory and a name the store made or listed there
		return nil, fmt.Errorf("cannot open span index %s: %w", path, err)
	}
	sg.path = path
	return sg, nil
}
