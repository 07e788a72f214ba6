package spanstore

import (
	"cmp"
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/storage"
)

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
// storage.ErrTraceNotFound.
func (s *Store) GetTrace(ctx context.Context, id model.TraceID) ([]model.Span, error) {
	var out []model.Span
	err := s.readParts(func(parts []*partition) error {
		var err error
		out, err = getTrace(ctx, parts, id)
		return err
	})
	if err == nil && len(out) == 0 {
		err = storage.ErrTraceNotFound
	}
	return out, err
}

func getTrace(ctx context.Context, parts []*partition, id model.TraceID) ([]model.Span, error) {
	var out []model.Span
	var ms []spanMeta
	budget := querylimit.BudgetOf(ctx)
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		if ms, err = p.traceMetas(id, ms[:0]); err != nil {
			return nil, err
		}
		if out, err = p.readSpans(budget, ms, out); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b model.Span) int { return cmp.Compare(a.StartTime, b.StartTime) })
	return out, nil
}

// traceMetas appends the metas of trace id's spans in p to out.
func (p *partition) traceMetas(id model.TraceID, out []spanMeta) ([]spanMeta, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, sg := range p.segs {
		var err error
		if out, err = sg.traceMetas(id, out); err != nil {
			return out, err
		}
	}
	return p.h.traceMetas(id, out), nil
}

// Services returns the names of the services with stored spans, sorted.
func (s *Store) Services(ctx context.Context) ([]string, error) {
	set := map[string]struct{}{}
	err := s.readParts(func(parts []*partition) error {
		for _, p := range parts {
			p.mu.RLock()
			for id := range p.h.byService {
				set[p.h.names[id]] = struct{}{}
			}
			for _, sg := range p.segs {
				for _, o := range sg.ops {
					set[sg.names[o.service]] = struct{}{}
				}
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
func (s *Store) Operations(ctx context.Context, service, spanKind string) ([]storage.Operation, error) {
	set := map[storage.Operation]struct{}{}
	add := func(name string, kind model.SpanKind) {
		op := storage.Operation{Name: name, SpanKind: kind.Name()}
		if spanKind == "" || spanKind == op.SpanKind {
			set[op] = struct{}{}
		}
	}
	err := s.readParts(func(parts []*partition) error {
		for _, p := range parts {
			p.mu.RLock()
			if sid, ok := p.h.strs[service]; ok {
				for k := range p.h.ops[sid] {
					add(p.h.names[k.op], k.kind)
				}
			}
			for _, sg := range p.segs {
				if sid, ok := sg.strs[service]; ok {
					for _, o := range sg.ops {
						if o.service == sid {
							add(sg.names[o.op], o.kind)
						}
					}
				}
			}
			p.mu.RUnlock()
		}
		return nil
	})
	out := make([]storage.Operation, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b storage.Operation) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpanKind, b.SpanKind))
	})
	return out, err
}

// FindTraces returns whole traces that have a span matching q, the trace
// with the latest matching span first.
func (s *Store) FindTraces(ctx context.Context, q storage.TraceQuery) ([][]model.Span, error) {
	var out [][]model.Span
	err := s.readParts(func(parts []*partition) error {
		latest := map[model.TraceID]int64{}
		found := func(trace model.TraceID, start int64) {
			if t, ok := latest[trace]; !ok || start > t {
				latest[trace] = start
			}
		}
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				return err
			}
			if q.StartMin != 0 && p.day < dayOf(q.StartMin) || q.StartMax != 0 && p.day > dayOf(q.StartMax) {
				continue
			}
			if err := p.match(ctx, &q, found); err != nil {
				return err
			}
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

// match calls f for every span of p matching q. Segments are searched
// concurrently: their reads are mostly system calls.
func (p *partition) match(ctx context.Context, q *storage.TraceQuery, f func(trace model.TraceID, start int64)) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	type hit struct {
		trace model.TraceID
		start int64
	}
	hits := make([][]hit, len(p.segs))
	errs := make([]error, len(p.segs))
	next := make(chan int, len(p.segs))
	for i := range p.segs {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0)*2, len(p.segs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[i] = ctx.Err(); errs[i] != nil {
					continue
				}
				errs[i] = p.segs[i].match(q, func(trace model.TraceID, start int64) {
					hits[i] = append(hits[i], hit{trace, start})
				})
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, hs := range hits {
		for _, h := range hs {
			f(h.trace, h.start)
		}
	}
	p.h.match(q, f)
	return nil
}

// Dependencies returns the calls between services of the spans that started
// in (endTs-lookback, endTs] (Unix ns): for every span whose parent span
// belongs to another service, one call from the parent's service to the
// span's, an error when the child span failed. Sorted by parent, child.
func (s *Store) Dependencies(ctx context.Context, endTs int64, lookback time.Duration) ([]storage.Dependency, error) {
	startTs := endTs - int64(lookback)
	type edge struct{ parent, child string }
	deps := map[edge]*storage.Dependency{}
	err := s.readParts(func(parts []*partition) error {
		// call records one span whose parent is in service parent.
		call := func(parent, child string, m *spanMeta) {
			if parent == child {
				return
			}
			d := deps[edge{parent, child}]
			if d == nil {
				d = &storage.Dependency{Parent: parent, Child: child}
				deps[edge{parent, child}] = d
			}
			d.CallCount++
			if m.isErr {
				d.ErrorCount++
			}
		}
		inRange := func(m *spanMeta) bool { return m.start > startTs && m.start <= endTs && !m.parent.IsZero() }
		for _, p := range parts {
			if p.day < dayOf(startTs) || p.day > dayOf(endTs) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := p.dependencies(ctx, parts, inRange, call); err != nil {
				return err
			}
		}
		return nil
	})
	out := make([]storage.Dependency, 0, len(deps))
	for _, d := range deps {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b storage.Dependency) int {
		return cmp.Or(cmp.Compare(a.Parent, b.Parent), cmp.Compare(a.Child, b.Child))
	})
	return out, err
}

// dependencies calls call for every span of p that want accepts, with the
// service of its parent span when it is found.
func (p *partition) dependencies(ctx context.Context, parts []*partition, want func(*spanMeta) bool,
	call func(parent, child string, m *spanMeta)) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, sg := range p.segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Metas are sorted by trace: resolve parents within each trace's run
		// first, elsewhere only when missing.
		var run []spanMeta
		flush := func() error {
			for i := range run {
				m := &run[i]
				if !want(m) {
					continue
				}
				found := false
				for _, id := range callers(m) {
					if j := slices.IndexFunc(run, func(o spanMeta) bool { return o.span == id }); j >= 0 {
						call(sg.names[run[j].service], sg.names[m.service], m)
						found = true
						break
					}
				}
				if found {
					continue
				}
				parent, ok, err := lookupCaller(parts, p, m)
				if err != nil {
					return err
				}
				if ok {
					call(parent, sg.names[m.service], m)
				}
			}
			run = run[:0]
			return nil
		}
		var ferr error
		err := sg.scan(func(m *spanMeta) {
			if len(run) > 0 && run[0].trace != m.trace && ferr == nil {
				ferr = flush()
			}
			run = append(run, *m)
		})
		if err == nil {
			err = ferr
		}
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
	}
	h := p.h
	for i := range h.metas {
		m := &h.metas[i]
		if !want(m) {
			continue
		}
		parent, ok, err := lookupCaller(parts, p, m)
		if err != nil {
			return err
		}
		if ok {
			call(parent, h.names[m.service], m)
		}
	}
	return nil
}

// callers returns the ids of the spans whose service is the caller of m,
// most likely first: the server half of a Zipkin shared span m names as its
// parent (model.SharedServerSpanID), then the parent.
func callers(m *spanMeta) []model.SpanID {
	server := model.SharedServerSpanID(m.trace, m.parent)
	if server == m.span {
		return []model.SpanID{m.parent}
	}
	return []model.SpanID{server, m.parent}
}

// lookupCaller finds the service of the first of m's callers stored.
func lookupCaller(parts []*partition, cur *partition, m *spanMeta) (string, bool, error) {
	for _, id := range callers(m) {
		if name, ok, err := lookupService(parts, cur, m.trace, id); ok || err != nil {
			return name, ok, err
		}
	}
	return "", false, nil
}

// lookupService finds the service of a span, looking first in cur (whose
// read lock the caller holds) and then in the other partitions.
func lookupService(parts []*partition, cur *partition, trace model.TraceID, span model.SpanID) (string, bool, error) {
	find := func(p *partition) (string, bool, error) {
		if i, ok := p.h.byKey[spanKey{trace, span}]; ok {
			return p.h.names[p.h.metas[i].service], true, nil
		}
		for _, sg := range p.segs {
			if name, ok, err := sg.serviceOf(trace, span); ok || err != nil {
				return name, ok, err
			}
		}
		return "", false, nil
	}
	if name, ok, err := find(cur); ok || err != nil {
		return name, ok, err
	}
	for _, p := range parts {
		if p == cur {
			continue
		}
		p.mu.RLock()
		name, ok, err := find(p)
		p.mu.RUnlock()
		if ok || err != nil {
			return name, ok, err
		}
	}
	return "", false, nil
}
