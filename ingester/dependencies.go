package ingester

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
)

// edges turns the stream of stored spans into golden metrics per service
// call edge (parent service → child service): calls, errors and latency,
// as spans arrive rather than by a periodic batch job. A child whose parent
// has not arrived yet waits, bounded, for it.
type edges struct {
	services *spanServices // recent span id → service
	pending  map[pendingKey][]pendingChild
	npending int

	calls   *prometheus.CounterVec
	errors  *prometheus.CounterVec
	latency *prometheus.HistogramVec
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
	edgeRecentSpans  = 1 << 17
	edgeMaxPending   = 1 << 15
	edgeServiceLabel = 64 // longest service name used as a label value
)

func newEdges(reg prometheus.Registerer) *edges {
	e := &edges{
		services: newSpanServices(edgeRecentSpans),
		pending:  map[pendingKey][]pendingChild{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "dependency", Name: "calls_total",
			Help: "Calls between services seen in spans, by parent and child service."}, []string{"parent", "child"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "dependency", Name: "errors_total",
			Help: "Calls between services whose child span has an error status."}, []string{"parent", "child"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "vigil", Subsystem: "dependency", Name: "latency_seconds",
			Help: "Duration of the child spans of calls between services.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"parent", "child"}),
	}
	if reg != nil {
		reg.MustRegister(e.calls, e.errors, e.latency)
	}
	return e
}

// observe records the edges of spans.
func (e *edges) observe(spans []model.Span) {
	for i := range spans {
		s := &spans[i]
		e.services.put(s.TraceID, s.SpanID, s.Service)
		// Children that were waiting for this span.
		k := pendingKey{s.TraceID, s.SpanID}
		if kids, ok := e.pending[k]; ok {
			for _, c := range kids {
				e.edge(s.Service, c)
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
				e.edge(s.Service, c)
			}
			e.npending -= len(e.pending[k])
			delete(e.pending, k)
		} else if server, ok := e.services.get(s.TraceID, model.SharedServerSpanID(s.TraceID, s.ParentSpanID)); ok {
			e.edge(server, pendingChild{service: s.Service, duration: s.Duration, err: s.StatusCode == 2})
			continue
		}
		c := pendingChild{service: s.Service, duration: s.Duration, err: s.StatusCode == 2}
		if parent, ok := e.services.get(s.TraceID, s.ParentSpanID); ok {
			e.edge(parent, c)
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

func (e *edges) edge(parent string, c pendingChild) {
	if parent == c.service {
		return
	}
	p, ch := truncate(parent, edgeServiceLabel), truncate(c.service, edgeServiceLabel)
	e.calls.WithLabelValues(p, ch).Inc()
	if c.err {
		e.errors.WithLabelValues(p, ch).Inc()
	}
	e.latency.WithLabelValues(p, ch).Observe(float64(c.duration) / 1e9)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
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
