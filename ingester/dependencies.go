package ingester

import (
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// edges turns the stream of stored spans into golden metrics per service
// call edge (parent service → child service): calls, errors and latency,
// as spans arrive rather than by a periodic batch job, counted by the
// span metrics aggregator. A child whose parent has not arrived yet waits,
// bounded, for it.
type edges struct {
	services *spanServices // recent span id → service
	pending  map[pendingKey][]pendingChild
	npending int

	metrics *spanmetrics.Aggregator
}

type pendingKey struct {
	trace model.TraceID
	span  model.SpanID
}

type pendingChild struct {
	service  string
	duration int64
	err      bool
}

// Bounds of the edge tracker's memory.
const (
	edgeRecentSpans = 1 << 17
	edgeMaxPending  = 1 << 15
)

func newEdges(m *spanmetrics.Aggregator) *edges {
	return &edges{
		services: newSpanServices(edgeRecentSpans),
		pending:  map[pendingKey][]pendingChild{},
		metrics:  m,
	}
}

// observe records the edges of spans.
func (e *edges) observe(tenant string, spans []model.Span) {
	for i := range spans {
		s := &spans[i]
		e.services.put(s.TraceID, s.SpanID, s.Service)
		// Children that were waiting for this span.
		k := pendingKey{s.TraceID, s.SpanID}
		if kids, ok := e.pending[k]; ok {
			for _, c := range kids {
				e.edge(tenant, s.Service, c)
			}
			e.npending -= len(kids)
			delete(e.pending, k)
		}
		if s.ParentSpanID.IsZero() {
			continue
		}
		if s.IsSharedServer() {
			// The server half of a Zipkin shared span: the children that
			// came first, waiting for the shared id, are its own.
			k := pendingKey{s.TraceID, s.ParentSpanID}
			for _, c := range e.pending[k] {
				e.edge(tenant, s.Service, c)
			}
			e.npending -= len(e.pending[k])
			delete(e.pending, k)
		} else if server, ok := e.services.get(s.TraceID, model.SharedServerSpanID(s.TraceID, s.ParentSpanID)); ok {
			e.edge(tenant, server, pendingChild{service: s.Service, duration: s.Duration, err: s.StatusCode == 2})
			continue
		}
		c := pendingChild{service: s.Service, duration: s.Duration, err: s.StatusCode == 2}
		if parent, ok := e.services.get(s.TraceID, s.ParentSpanID); ok {
			e.edge(tenant, parent, c)
			continue
		}
		if e.npending >= edgeMaxPending {
			clear(e.pending) // the oldest waiters are the least likely to find their parent
			e.npending = 0
		}
		pk := pendingKey{s.TraceID, s.ParentSpanID}
		e.pending[pk] = append(e.pending[pk], c)
		e.npending++
	}
}

func (e *edges) edge(tenant, parent string, c pendingChild) {
	e.metrics.ObserveEdgeTenant(tenant, parent, c.service, time.Duration(c.duration), c.err)
}

// spanServices is a bounded map from span to service: a ring of the most
// recent spans.
type spanServices struct {
	m    map[pendingKey]string
	ring []pendingKey
	next int
}

func newSpanServices(n int) *spanServices {
	return &spanServices{m: make(map[pendingKey]string, n), ring: make([]pendingKey, n)}
}

func (s *spanServices) put(t model.TraceID, sp model.SpanID, service string) {
	k := pendingKey{t, sp}
	if _, ok := s.m[k]; ok {
		return
	}
	if old := s.ring[s.next]; old != (pendingKey{}) {
		delete(s.m, old)
	}
	s.ring[s.next] = k
	s.next = (s.next + 1) % len(s.ring)
	s.m[k] = service
}

func (s *spanServices) get(t model.TraceID, sp model.SpanID) (string, bool) {
	v, ok := s.m[pendingKey{t, sp}]
	return v, ok
}
