package spanstore

import (
	"bytes"
	"cmp"
	"hash/maphash"
	"slices"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// The head indexes, in memory, the blocks of a partition appended since its
// last sealed segment (segment.go): from head.start to the end of the span
// file. Once it holds sealSpans spans it is written out as a segment and
// emptied, so memory stays bounded however many spans a day holds.

type spanKey struct {
	trace model.TraceID
	span  model.SpanID
}

// spanMeta is what an index keeps of one span: enough to filter a search and
// compute dependencies without reading the record. service and op index
// the names of the head or segment holding it.
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

// serviceTerm is the term of a segment whose postings are the spans of a
// service; it cannot collide with a tag term, which holds a NUL and whose
// key is valid UTF-8.
func serviceTerm(name string) string { return "\xff" + name }

type head struct {
	start int64 // offset in the span file of the first block indexed here

	metas     []spanMeta
	byKey     map[spanKey]uint32 // → index in metas; dedup and parent lookup
	lastSpan  map[model.TraceID]uint32
	prevSpan  []uint32          // per span, 1 + index of the previous span of its trace, or 0
	strs      map[string]uint32 // services and operation names
	names     []string
	byService map[uint32][]uint32
	ops       map[uint32]map[opKey]struct{}
	// Tags: every span's term ids ("key\x00value"), spanTerms[termEnd[i-1]:
	// termEnd[i]] for span i. Posting lists are built when sealing; until
	// then a tag search scans these ids, which stay few. Terms are kept
	// once, in arena (term id t at arena[termOff[t]:termOff[t+1]]), and
	// found by hash: the head holds no pointer per term or span, which
	// keeps garbage collection cheap.
	seed      maphash.Seed
	terms     map[uint64]uint32 // hash → term id
	collided  map[string]uint32 // terms whose hash another term has
	arena     []byte
	termOff   []uint32
	spanTerms []uint32
	termEnd   []uint32
	tagBuf    []byte
}

// newHead returns an empty head of the blocks from start, sized for spans
// spans (0 when unknown: a partition that may stay small).
func newHead(start int64, spans int) *head {
	return &head{
		start:     start,
		metas:     make([]spanMeta, 0, spans),
		prevSpan:  make([]uint32, 0, spans),
		termEnd:   make([]uint32, 0, spans),
		spanTerms: make([]uint32, 0, spans*8),
		byKey:     make(map[spanKey]uint32, spans),
		lastSpan:  make(map[model.TraceID]uint32, spans/4),
		strs:      make(map[string]uint32),
		byService: make(map[uint32][]uint32),
		ops:       make(map[uint32]map[opKey]struct{}),
		seed:      maphash.MakeSeed(),
		terms:     make(map[uint64]uint32, spans/4),
		collided:  make(map[string]uint32),
		termOff:   []uint32{0},
	}
}

func (h *head) intern(s string) uint32 {
	if id, ok := h.strs[s]; ok {
		return id
	}
	id := uint32(len(h.names))
	h.names = append(h.names, s)
	h.strs[s] = id
	return id
}

// add indexes span s stored at loc; the caller holds the partition's lock
// for writing (or is its only user, at open).
func (h *head) add(s *model.Span, loc spanLoc) {
	idx := uint32(len(h.metas))
	m := spanMeta{
		trace: s.TraceID, span: s.SpanID, parent: s.ParentSpanID,
		service: h.intern(s.Service), op: h.intern(s.Name), kind: s.Kind,
		isErr: isError(s), start: s.StartTime, dur: s.Duration, loc: loc,
	}
	h.metas = append(h.metas, m)
	h.byKey[spanKey{s.TraceID, s.SpanID}] = idx
	h.prevSpan = append(h.prevSpan, h.lastSpan[s.TraceID])
	h.lastSpan[s.TraceID] = idx + 1
	h.byService[m.service] = append(h.byService[m.service], idx)
	ops := h.ops[m.service]
	if ops == nil {
		ops = make(map[opKey]struct{})
		h.ops[m.service] = ops
	}
	ops[opKey{m.op, m.kind}] = struct{}{}
	first := len(h.spanTerms)
	forEachTag(s, h.tagBuf, func(term []byte) {
		h.tagBuf = term[:0]
		id := h.internTerm(term)
		if slices.Contains(h.spanTerms[first:], id) {
			return // same key=value twice on one span
		}
		h.spanTerms = append(h.spanTerms, id)
	})
	h.termEnd = append(h.termEnd, uint32(len(h.spanTerms)))
}

// term returns the bytes of term id.
func (h *head) term(id uint32) []byte { return h.arena[h.termOff[id]:h.termOff[id+1]] }

func (h *head) lookupTerm(t []byte) (uint32, bool) {
	id, ok := h.terms[maphash.Bytes(h.seed, t)]
	if ok && !bytes.Equal(h.term(id), t) {
		id, ok = h.collided[string(t)]
	}
	return id, ok
}

func (h *head) internTerm(t []byte) uint32 {
	hash := maphash.Bytes(h.seed, t)
	id, taken := h.terms[hash]
	if taken {
		if bytes.Equal(h.term(id), t) {
			return id
		}
		if id, ok := h.collided[string(t)]; ok {
			return id
		}
	}
	id = uint32(len(h.termOff) - 1)
	h.arena = append(h.arena, t...)
	h.termOff = append(h.termOff, uint32(len(h.arena)))
	if taken {
		h.collided[string(t)] = id
	} else {
		h.terms[hash] = id
	}
	return id
}

// spanTermIDs returns the term ids of span i.
func (h *head) spanTermIDs(i uint32) []uint32 {
	from := uint32(0)
	if i > 0 {
		from = h.termEnd[i-1]
	}
	return h.spanTerms[from:h.termEnd[i]]
}

// traceMetas appends the metas of the spans of trace id to out.
func (h *head) traceMetas(id model.TraceID, out []spanMeta) []spanMeta {
	for i := h.lastSpan[id]; i != 0; i = h.prevSpan[i-1] {
		out = append(out, h.metas[i-1])
	}
	return out
}

// match calls f for every span of h matching q.
func (h *head) match(q *storage.TraceQuery, f func(trace model.TraceID, start int64)) {
	svc, op := ^uint32(0), ^uint32(0)
	if q.Service != "" {
		id, ok := h.strs[q.Service]
		if !ok {
			return
		}
		svc = id
	}
	if q.Operation != "" {
		id, ok := h.strs[q.Operation]
		if !ok {
			return
		}
		op = id
	}
	var want []uint32
	for k, v := range q.Tags {
		id, ok := h.lookupTerm([]byte(k + "\x00" + v))
		if !ok {
			return
		}
		want = append(want, id)
	}
	check := func(idx uint32) {
		m := &h.metas[idx]
		if !matches(q, m, svc, op) {
			return
		}
		if len(want) > 0 {
			have := h.spanTermIDs(idx)
			for _, id := range want {
				if !slices.Contains(have, id) {
					return
				}
			}
		}
		f(m.trace, m.start)
	}
	if svc != ^uint32(0) {
		for _, idx := range h.byService[svc] {
			check(idx)
		}
		return
	}
	for i := range h.metas {
		check(uint32(i))
	}
}

// matches reports whether m meets q; svc and op are the ids of q's service
// and operation in m's names, ^0 when q has none.
func matches(q *storage.TraceQuery, m *spanMeta, svc, op uint32) bool {
	return !(svc != ^uint32(0) && m.service != svc || op != ^uint32(0) && m.op != op ||
		q.StartMin != 0 && m.start < q.StartMin || q.StartMax != 0 && m.start > q.StartMax ||
		q.DurationMin != 0 && m.dur < q.DurationMin || q.DurationMax != 0 && m.dur > q.DurationMax)
}

// intersectAll intersects ascending lists, shortest first.
func intersectAll(lists [][]uint32) []uint32 {
	slices.SortFunc(lists, func(a, b []uint32) int { return cmp.Compare(len(a), len(b)) })
	cand := lists[0]
	for _, l := range lists[1:] {
		if cand = intersect(cand, l); len(cand) == 0 {
			break
		}
	}
	return cand
}

// intersect returns the elements common to the ascending lists a and b.
func intersect(a, b []uint32) []uint32 {
	out := make([]uint32, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
