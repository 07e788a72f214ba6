package spanstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// ErrTraceNotFound is returned by GetTrace for a trace id with no spans.
var ErrTraceNotFound = errors.New("trace not found")

// Operation is an operation name of a service and the kind of its spans
// ("server", "client", "producer", "consumer", "internal" or "").
type Operation struct {
	Name     string
	SpanKind string
}

// TraceQuery selects traces that have one span matching every criterion.
type TraceQuery struct {
	Service   string
	Operation string
	// Tags match span, process or event attributes (and span.kind,
	// error=true), compared as strings.
	Tags map[string]string
	// StartMin and StartMax bound the span's start time, Unix ns; 0 is
	// unbounded.
	StartMin, StartMax int64
	// DurationMin and DurationMax bound the span's duration, ns; 0 is
	// unbounded.
	DurationMin, DurationMax int64
	// Limit is the most traces returned; 0 is unlimited.
	Limit int
}

// Dependency is the calls from spans of service Parent to spans of service
// Child.
type Dependency struct {
	Parent, Child         string
	CallCount, ErrorCount uint64
}

// readParts calls f with the partitions, oldest first, holding the store's
// read lock so that retention cannot close them meanwhile.
func (s *Store) readParts(f func(parts []*partition) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b *partition) int { return cmp.Compare(a.day, b.day) })
	return f(parts)
}

// GetTrace returns the spans of trace id ordered by start time, or
// ErrTraceNotFound.
func (s *Store) GetTrace(ctx context.Context, id model.TraceID) ([]model.Span, error) {
	var out []model.Span
	err := s.readParts(func(parts []*partition) error {
		var err error
		out, err = getTrace(ctx, parts, id)
		return err
	})
	if err == nil && len(out) == 0 {
		err = ErrTraceNotFound
	}
	return out, err
}

func getTrace(ctx context.Context, parts []*partition, id model.TraceID) ([]model.Span, error) {
	var out []model.Span
	var ms []spanMeta
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ms = ms[:0]
		p.mu.RLock()
		for _, i := range p.traces[id] {
			ms = append(ms, p.metas[i])
		}
		p.mu.RUnlock()
		var err error
		if out, err = p.readSpans(ms, out); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b model.Span) int { return cmp.Compare(a.StartTime, b.StartTime) })
	return out, nil
}

// Services returns the names of the services with stored spans, sorted.
func (s *Store) Services(ctx context.Context) ([]string, error) {
	set := map[string]struct{}{}
	err := s.readParts(func(parts []*partition) error {
		for _, p := range parts {
			p.mu.RLock()
			for id := range p.byService {
				set[p.names[id]] = struct{}{}
			}
			p.mu.RUnlock()
		}
		return nil
	})
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, err
}

// Operations returns the operations of service, of spans of kind spanKind
// ("" for every kind), sorted by name and kind.
func (s *Store) Operations(ctx context.Context, service, spanKind string) ([]Operation, error) {
	set := map[Operation]struct{}{}
	err := s.readParts(func(parts []*partition) error {
		for _, p := range parts {
			p.mu.RLock()
			if sid, ok := p.strs[service]; ok {
				for k := range p.ops[sid] {
					op := Operation{Name: p.names[k.op], SpanKind: KindName(k.kind)}
					if spanKind == "" || spanKind == op.SpanKind {
						set[op] = struct{}{}
					}
				}
			}
			p.mu.RUnlock()
		}
		return nil
	})
	out := make([]Operation, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Operation) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpanKind, b.SpanKind))
	})
	return out, err
}

// FindTraces returns whole traces that have a span matching q, the trace
// with the latest matching span first.
func (s *Store) FindTraces(ctx context.Context, q TraceQuery) ([][]model.Span, error) {
	var out [][]model.Span
	err := s.readParts(func(parts []*partition) error {
		latest := map[model.TraceID]int64{}
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				return err
			}
			if q.StartMin != 0 && p.day < dayOf(q.StartMin) || q.StartMax != 0 && p.day > dayOf(q.StartMax) {
				continue
			}
			p.mu.RLock()
			p.match(&q, func(m *spanMeta) {
				if t, ok := latest[m.trace]; !ok || m.start > t {
					latest[m.trace] = m.start
				}
			})
			p.mu.RUnlock()
		}
		type hit struct {
			id    model.TraceID
			start int64
		}
		hits := make([]hit, 0, len(latest))
		for id, t := range latest {
			hits = append(hits, hit{id, t})
		}
		slices.SortFunc(hits, func(a, b hit) int {
			return cmp.Or(cmp.Compare(b.start, a.start), slices.Compare(a.id[:], b.id[:]))
		})
		if q.Limit > 0 && len(hits) > q.Limit {
			hits = hits[:q.Limit]
		}
		for _, h := range hits {
			spans, err := getTrace(ctx, parts, h.id)
			if err != nil {
				return err
			}
			out = append(out, spans)
		}
		return nil
	})
	return out, err
}

// match calls f for every span of p matching q; the caller holds p.mu.
func (p *partition) match(q *TraceQuery, f func(*spanMeta)) {
	svc, op := ^uint32(0), ^uint32(0)
	if q.Service != "" {
		id, ok := p.strs[q.Service]
		if !ok {
			return
		}
		svc = id
	}
	if q.Operation != "" {
		id, ok := p.strs[q.Operation]
		if !ok {
			return
		}
		op = id
	}
	// Candidates: the intersection of the tag posting lists, else the
	// service's spans, else every span.
	var cand []uint32
	all := false
	switch {
	case len(q.Tags) > 0:
		// Intersect from the shortest posting list.
		lists := make([][]uint32, 0, len(q.Tags))
		for k, v := range q.Tags {
			l, ok := p.tags[k+"\x00"+v]
			if !ok {
				return
			}
			lists = append(lists, l)
		}
		slices.SortFunc(lists, func(a, b []uint32) int { return cmp.Compare(len(a), len(b)) })
		cand = lists[0]
		for _, l := range lists[1:] {
			if cand = intersect(cand, l); len(cand) == 0 {
				return
			}
		}
	case svc != ^uint32(0):
		cand = p.byService[svc]
	default:
		all = true
	}
	n := len(cand)
	if all {
		n = len(p.metas)
	}
	for i := 0; i < n; i++ {
		idx := uint32(i)
		if !all {
			idx = cand[i]
		}
		m := &p.metas[idx]
		if svc != ^uint32(0) && m.service != svc || op != ^uint32(0) && m.op != op ||
			q.StartMin != 0 && m.start < q.StartMin || q.StartMax != 0 && m.start > q.StartMax ||
			q.DurationMin != 0 && m.dur < q.DurationMin || q.DurationMax != 0 && m.dur > q.DurationMax {
			continue
		}
		f(m)
	}
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

// Dependencies returns the calls between services of the spans that started
// in (endTs-lookback, endTs] (Unix ns): for every span whose parent span
// belongs to another service, one call from the parent's service to the
// span's, an error when the child span failed. Sorted by parent, child.
func (s *Store) Dependencies(ctx context.Context, endTs int64, lookback time.Duration) ([]Dependency, error) {
	startTs := endTs - int64(lookback)
	type edge struct{ parent, child string }
	deps := map[edge]*Dependency{}
	err := s.readParts(func(parts []*partition) error {
		for _, p := range parts {
			if p.day < dayOf(startTs) || p.day > dayOf(endTs) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			p.mu.RLock()
			for i := range p.metas {
				m := &p.metas[i]
				if m.start <= startTs || m.start > endTs || m.parent.IsZero() {
					continue
				}
				parent, ok := lookupService(parts, p, m.trace, m.parent)
				child := p.names[m.service]
				if !ok || parent == child {
					continue
				}
				d := deps[edge{parent, child}]
				if d == nil {
					d = &Dependency{Parent: parent, Child: child}
					deps[edge{parent, child}] = d
				}
				d.CallCount++
				if m.isErr {
					d.ErrorCount++
				}
			}
			p.mu.RUnlock()
		}
		return nil
	})
	out := make([]Dependency, 0, len(deps))
	for _, d := range deps {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Dependency) int {
		return cmp.Or(cmp.Compare(a.Parent, b.Parent), cmp.Compare(a.Child, b.Child))
	})
	return out, err
}

// lookupService finds the service of a span, looking first in cur (whose
// read lock the caller holds) and then in the other partitions.
func lookupService(parts []*partition, cur *partition, trace model.TraceID, span model.SpanID) (string, bool) {
	k := spanKey{trace, span}
	if i, ok := cur.byKey[k]; ok {
		return cur.names[cur.metas[i].service], true
	}
	for _, p := range parts {
		if p == cur {
			continue
		}
		p.mu.RLock()
		i, ok := p.byKey[k]
		var name string
		if ok {
			name = p.names[p.metas[i].service]
		}
		p.mu.RUnlock()
		if ok {
			return name, true
		}
	}
	return "", false
}
