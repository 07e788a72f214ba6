package otlptraces

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/model"
)

// TraceBatch is an OTLP ExportTraceServiceRequest in protobuf holding
// spans of one trace.
type TraceBatch struct {
	TraceID model.TraceID
	Data    []byte
}

// Key returns the queue key of b: its trace id in 32 lower-case hex digits.
func (b TraceBatch) Key() string { return b.TraceID.String() }

var errMalformed = errors.New("cannot split OTLP traces by trace id: malformed ExportTraceServiceRequest protobuf")

// SplitByTrace cuts data, an OTLP ExportTraceServiceRequest in protobuf,
// into one request per trace id without decoding the spans: each part
// holds the spans of one trace byte for byte, each under a copy of the
// ResourceSpans and ScopeSpans fields it came with, so it decodes to
// exactly those spans. Parts are in the order of each trace's first span,
// and spans keep their order.
//
// When maxBytes is above 0, a trace whose part would be larger is cut in
// halves under the same trace id, again and again, until each part fits
// or holds one span, so that one huge trace does not block a queue that
// caps its messages. A request of one trace that fits is returned as it
// is (Data is data); otherwise the parts share one new buffer. A request
// without spans gives none. SplitByTrace fails on malformed protobuf and
// on a trace id that is not 16 bytes (or empty: the zero id).
func SplitByTrace(data []byte, maxBytes int) ([]TraceBatch, error) {
	s := splitter{spans: make([]spanRef, 0, 64)}
	if !s.parse(data) {
		return nil, errMalformed
	}
	if len(s.spans) == 0 {
		return nil, nil
	}
	first := s.spans[0].trace
	same := true
	for i := range s.spans {
		if s.spans[i].trace != first {
			same = false
			break
		}
	}
	if same && (maxBytes <= 0 || len(data) <= maxBytes) {
		return []TraceBatch{{TraceID: first, Data: data}}, nil
	}

	// Span indexes ordered by trace (in order of first appearance), then
	// by position in data.
	order := make([]int32, 0, len(s.spans))
	var groups [][]int32
	if same {
		for i := range s.spans {
			order = append(order, int32(i))
		}
		groups = [][]int32{order}
	} else {
		index := map[model.TraceID]int{}
		groupOf := make([]int, len(s.spans))
		var counts []int
		for i := range s.spans {
			g, ok := index[s.spans[i].trace]
			if !ok {
				g = len(counts)
				index[s.spans[i].trace] = g
				counts = append(counts, 0)
			}
			groupOf[i] = g
			counts[g]++
		}
		order = order[:len(s.spans)]
		starts := make([]int, len(counts))
		for g, off := 0, 0; g < len(counts); g++ {
			starts[g] = off
			groups = append(groups, order[off:off+counts[g]])
			off += counts[g]
		}
		for i, g := range groupOf {
			order[starts[g]] = int32(i)
			starts[g]++
		}
	}

	var parts [][]int32
	total := 0
	var cut func(idx []int32)
	cut = func(idx []int32) {
		n := s.size(idx)
		if maxBytes > 0 && n > maxBytes && len(idx) > 1 {
			cut(idx[:len(idx)/2])
			cut(idx[len(idx)/2:])
			return
		}
		parts = append(parts, idx)
		total += n
	}
	for _, g := range groups {
		cut(g)
	}
	buf := make([]byte, 0, total)
	out := make([]TraceBatch, len(parts))
	for i, idx := range parts {
		start := len(buf)
		buf = s.encode(buf, idx)
		out[i] = TraceBatch{TraceID: s.spans[idx[0]].trace, Data: buf[start:len(buf):len(buf)]}
	}
	return out, nil
}

// splitter holds the structure of a request: the header of every
// ResourceSpans and ScopeSpans (all their fields but the repeated items, as
// pieces of the request) and every span, undecoded.
type splitter struct {
	pieces [][]byte // header fields, by header
	rs     []header // of each ResourceSpans
	ss     []header // of each ScopeSpans
	spans  []spanRef
}

// header is pieces[from:to], n bytes in all.
type header struct{ from, to, n int }

type spanRef struct {
	trace model.TraceID
	ss    int // index in splitter.ss
	rs    int // index in splitter.rs
	b     []byte
}

// Field numbers, all of wire type LEN: ExportTraceServiceRequest.resource_spans,
// ResourceSpans.scope_spans, ScopeSpans.spans, Span.trace_id.
const (
	fieldResourceSpans = 1
	fieldScopeSpans    = 2
	fieldSpans         = 2
	fieldTraceID       = 1
)

// field reads the field b starts with: its number and type, its value
// (the bytes of a LEN field), and its size; n < 0 when b does not start
// with a well-formed field.
func field(b []byte) (num protowire.Number, typ protowire.Type, value []byte, n int) {
	num, typ, t := protowire.ConsumeTag(b)
	if t < 0 {
		return 0, 0, nil, t
	}
	m := protowire.ConsumeFieldValue(num, typ, b[t:])
	if m < 0 {
		return 0, 0, nil, m
	}
	if typ == protowire.BytesType {
		value, _ = protowire.ConsumeBytes(b[t:])
	}
	return num, typ, value, t + m
}

func (s *splitter) parse(data []byte) bool {
	for b := data; len(b) > 0; {
		num, typ, v, n := field(b)
		if n < 0 {
			return false
		}
		if num == fieldResourceSpans && (typ != protowire.BytesType || !s.items(v, fieldScopeSpans, s.scopeSpans, &s.rs)) {
			return false
		}
		// Other fields are unknown here, and ignored by decoders.
		b = b[n:]
	}
	return true
}

// items reads a ResourceSpans or ScopeSpans b: it records every field but
// field item as its header in headers, then calls fn for each item field,
// in order.
func (s *splitter) items(b []byte, item protowire.Number, fn func([]byte) bool, headers *[]header) bool {
	h := header{from: len(s.pieces)}
	for rest := b; len(rest) > 0; {
		num, typ, _, n := field(rest)
		switch {
		case n < 0:
			return false
		case num == item && typ != protowire.BytesType:
			return false
		case num != item:
			s.pieces = append(s.pieces, rest[:n])
			h.n += n
		}
		rest = rest[n:]
	}
	h.to = len(s.pieces)
	*headers = append(*headers, h)
	for rest := b; len(rest) > 0; {
		num, _, v, n := field(rest)
		if num == item && !fn(v) {
			return false
		}
		rest = rest[n:]
	}
	return true
}

// appendHeader appends the fields of h.
func (s *splitter) appendHeader(dst []byte, h header) []byte {
	for _, p := range s.pieces[h.from:h.to] {
		dst = append(dst, p...)
	}
	return dst
}

func (s *splitter) scopeSpans(b []byte) bool {
	return s.items(b, fieldSpans, s.span, &s.ss)
}

func (s *splitter) span(b []byte) bool {
	r := spanRef{ss: len(s.ss) - 1, rs: len(s.rs) - 1, b: b}
	for rest := b; len(rest) > 0; {
		num, typ, v, n := field(rest)
		if n < 0 {
			return false
		}
		if num == fieldTraceID && typ == protowire.BytesType { // the last one counts, as in any decoder
			switch len(v) {
			case 0:
				r.trace = model.TraceID{}
			case len(r.trace):
				r.trace = model.TraceID(v)
			default:
				return false
			}
		}
		rest = rest[n:]
	}
	s.spans = append(s.spans, r)
	return true
}

// lenField is the size of a LEN field with a one-byte tag and n bytes.
func lenField(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// scopeLen returns the size of the ScopeSpans of the spans idx[i:] start
// with (those of one ScopeSpans) and the index after them.
func (s *splitter) scopeLen(idx []int32, i int) (int, int) {
	ss := s.spans[idx[i]].ss
	n := s.ss[ss].n
	for ; i < len(idx) && s.spans[idx[i]].ss == ss; i++ {
		n += lenField(len(s.spans[idx[i]].b))
	}
	return n, i
}

// resourceLen returns the size of the ResourceSpans the spans idx[i:]
// start with and the index after them.
func (s *splitter) resourceLen(idx []int32, i int) (int, int) {
	rs := s.spans[idx[i]].rs
	n := s.rs[rs].n
	for i < len(idx) && s.spans[idx[i]].rs == rs {
		var m int
		m, i = s.scopeLen(idx, i)
		n += lenField(m)
	}
	return n, i
}

// size returns the size of the request encode writes for idx.
func (s *splitter) size(idx []int32) int {
	n := 0
	for i := 0; i < len(idx); {
		var m int
		m, i = s.resourceLen(idx, i)
		n += lenField(m)
	}
	return n
}

// encode appends the request holding the spans idx, which are in the
// order of data: consecutive spans of one ScopeSpans share a copy of it,
// and consecutive ScopeSpans of one ResourceSpans share a copy of that.
func (s *splitter) encode(dst []byte, idx []int32) []byte {
	for i := 0; i < len(idx); {
		rs := s.spans[idx[i]].rs
		n, _ := s.resourceLen(idx, i)
		dst = protowire.AppendTag(dst, fieldResourceSpans, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(n))
		dst = s.appendHeader(dst, s.rs[rs])
		for i < len(idx) && s.spans[idx[i]].rs == rs {
			ss := s.spans[idx[i]].ss
			m, _ := s.scopeLen(idx, i)
			dst = protowire.AppendTag(dst, fieldScopeSpans, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(m))
			dst = s.appendHeader(dst, s.ss[ss])
			for ; i < len(idx) && s.spans[idx[i]].ss == ss; i++ {
				b := s.spans[idx[i]].b
				dst = protowire.AppendTag(dst, fieldSpans, protowire.BytesType)
				dst = protowire.AppendVarint(dst, uint64(len(b)))
				dst = append(dst, b...)
			}
		}
	}
	return dst
}
