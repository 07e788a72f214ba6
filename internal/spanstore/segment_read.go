package spanstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// readMetas reads n metas from ordinal first into buf.
func (sg *segment) readMetas(buf []byte, first, n int) ([]byte, error) {
	size := n * metaSize
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := sg.f.ReadAt(buf, sg.metasOff+int64(first)*metaSize); err != nil {
		return buf, fmt.Errorf("cannot read span index %s: %w", sg.path, err)
	}
	return buf, nil
}

// traceMetas appends the metas of the spans of trace id to out.
func (sg *segment) traceMetas(id model.TraceID, out []spanMeta) ([]spanMeta, error) {
	if !sg.traces.has(id) {
		return out, nil
	}
	// The trace starts after the last sample below id.
	i := sort.Search(len(sg.traceKeys), func(i int) bool { return bytes.Compare(sg.traceKeys[i][:], id[:]) >= 0 })
	first := max(i-1, 0) * traceSample
	var buf []byte
	for first < sg.n {
		n := min(traceSample, sg.n-first)
		var err error
		if buf, err = sg.readMetas(buf, first, n); err != nil {
			return out, err
		}
		for k := 0; k < n; k++ {
			rec := buf[k*metaSize : (k+1)*metaSize]
			switch c := bytes.Compare(rec[:16], id[:]); {
			case c < 0:
				continue
			case c > 0:
				return out, nil
			}
			out = append(out, getMeta(rec))
		}
		first += n
	}
	return out, nil
}

// postings returns the ascending ordinals of the metas holding term, nil
// when none.
func (sg *segment) postings(term string) ([]uint32, error) {
	g := sort.SearchStrings(sg.termKeys, term)
	if g == len(sg.termKeys) || sg.termKeys[g] != term {
		g--
	}
	if g < 0 {
		return nil, nil
	}
	end := sg.dictEnd
	if g+1 < len(sg.termOffs) {
		end = sg.termOffs[g+1]
	}
	dict := make([]byte, end-sg.termOffs[g])
	if _, err := sg.f.ReadAt(dict, sg.termOffs[g]); err != nil {
		return nil, fmt.Errorf("cannot read span index %s: %w", sg.path, err)
	}
	d := binenc.NewReader(dict)
	for d.More() {
		t := d.LenBytes()
		off, n, count := d.Uvarint(), d.Uvarint(), d.Uvarint()
		if d.Err() != nil || string(t) < term {
			continue
		}
		if string(t) > term {
			return nil, nil
		}
		if count > uint64(sg.n) || n > uint64(sg.fileSize) {
			break
		}
		raw := make([]byte, n)
		if _, err := sg.f.ReadAt(raw, sg.postingsOff+int64(off)); err != nil {
			return nil, fmt.Errorf("cannot read span index %s: %w", sg.path, err)
		}
		out := make([]uint32, 0, count)
		var v uint64
		for p := 0; p < len(raw); {
			dv, l := binary.Uvarint(raw[p:])
			if l <= 0 {
				return nil, fmt.Errorf("span index %s: %w", sg.path, errCorrupt)
			}
			v += dv
			if v >= uint64(sg.n) {
				return nil, fmt.Errorf("span index %s: %w", sg.path, errCorrupt)
			}
			out = append(out, uint32(v))
			p += l
		}
		return out, nil
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("span index %s: %w", sg.path, errCorrupt)
	}
	return nil, nil
}

// match calls f for every span of sg matching q.
func (sg *segment) match(q *storage.TraceQuery, f func(trace model.TraceID, start int64)) error {
	if q.StartMin != 0 && sg.maxStart < q.StartMin || q.StartMax != 0 && sg.minStart > q.StartMax {
		return nil
	}
	svc, op := ^uint32(0), ^uint32(0)
	if q.Service != "" {
		id, ok := sg.strs[q.Service]
		if !ok {
			return nil
		}
		svc = id
	}
	if q.Operation != "" {
		id, ok := sg.strs[q.Operation]
		if !ok {
			return nil
		}
		op = id
	}
	var terms []string
	for k, v := range q.Tags {
		terms = append(terms, k+"\x00"+v)
	}
	if len(terms) == 0 && q.Service != "" {
		terms = append(terms, serviceTerm(q.Service))
	}
	if len(terms) == 0 {
		return sg.scan(func(m *spanMeta) {
			if matches(q, m, svc, op) {
				f(m.trace, m.start)
			}
		})
	}
	lists := make([][]uint32, 0, len(terms))
	for _, t := range terms {
		l, err := sg.postings(t)
		if err != nil || len(l) == 0 {
			return err
		}
		lists = append(lists, l)
	}
	cand := intersectAll(lists)
	// Read the candidates' metas in runs of nearby ordinals.
	var buf []byte
	for i := 0; i < len(cand); {
		first := int(cand[i])
		j := i
		for j+1 < len(cand) && int(cand[j+1]) < first+segReadChunk {
			j++
		}
		var err error
		if buf, err = sg.readMetas(buf, first, int(cand[j])-first+1); err != nil {
			return err
		}
		for ; i <= j; i++ {
			o := int(cand[i]) - first
			m := getMeta(buf[o*metaSize : (o+1)*metaSize])
			if matches(q, &m, svc, op) {
				f(m.trace, m.start)
			}
		}
	}
	return nil
}

// scan calls f for every meta of sg, in order.
func (sg *segment) scan(f func(m *spanMeta)) error {
	var buf []byte
	for first := 0; first < sg.n; first += segReadChunk {
		n := min(segReadChunk, sg.n-first)
		var err error
		if buf, err = sg.readMetas(buf, first, n); err != nil {
			return err
		}
		for k := 0; k < n; k++ {
			m := getMeta(buf[k*metaSize : (k+1)*metaSize])
			f(&m)
		}
	}
	return nil
}

// serviceOf returns the name of the service of span id of trace in sg.
func (sg *segment) serviceOf(trace model.TraceID, span model.SpanID) (string, bool, error) {
	ms, err := sg.traceMetas(trace, nil)
	if err != nil {
		return "", false, err
	}
	i := slices.IndexFunc(ms, func(m spanMeta) bool { return m.span == span })
	if i < 0 {
		return "", false, nil
	}
	return sg.names[ms[i].service], true, nil
}
