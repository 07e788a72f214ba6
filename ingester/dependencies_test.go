package ingester

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// counterValue gathers c and returns the counter name whose non-empty
// labels are exactly lv, name=value pairs in the order of the names; 0
// when there is none.
func counterValue(t *testing.T, c prometheus.Collector, name string, lv ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(lv, " ")
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() { // sorted by name
				if l.GetValue() != "" {
					pairs = append(pairs, l.GetName()+"="+l.GetValue())
				}
			}
			if mf.GetName() == name && strings.Join(pairs, " ") == want {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func edgeCalls(t *testing.T, c prometheus.Collector, parent, child string) float64 {
	t.Helper()
	return counterValue(t, c, spanmetrics.EdgeCallsMetric, "child="+child, "parent="+parent)
}

func TestEdges(t *testing.T) {
	e := newEdges(spanmetrics.New(spanmetrics.Options{}))
	tr := model.TraceID{1}
	span := func(id, parent byte, svc string, status uint8) model.Span {
		s := model.Span{TraceID: tr, SpanID: model.SpanID{id}, Service: svc, Duration: 2e6, StatusCode: status}
		if parent != 0 {
			s.ParentSpanID = model.SpanID{parent}
		}
		return s
	}
	// The child of db arrives before its parent; the second call fails.
	e.observe("", []model.Span{span(1, 0, "web", 0), span(2, 1, "api", 0), span(4, 3, "db", 2)})
	e.observe("", []model.Span{span(3, 2, "api", 0), span(5, 3, "db", 0), span(6, 2, "api", 0)})
	f := func(parent, child string, calls, errs float64) {
		t.Helper()
		if got := edgeCalls(t, e.metrics, parent, child); got != calls {
			t.Errorf("%s→%s calls: got %v; want %v", parent, child, got, calls)
		}
		if got := counterValue(t, e.metrics, spanmetrics.EdgeErrorsMetric, "child="+child, "parent="+parent); got != errs {
			t.Errorf("%s→%s errors: got %v; want %v", parent, child, got, errs)
		}
	}
	f("web", "api", 1, 0)
	f("api", "db", 2, 1)
	f("api", "api", 0, 0) // calls inside a service are not edges
	if e.npending != 0 {
		t.Errorf("%d children still waiting; want 0", e.npending)
	}
}

// TestEdgesZipkinSharedSpan: the server's own call names the shared id as
// its parent and comes first; the server half claims it.
func TestEdgesZipkinSharedSpan(t *testing.T) {
	e := newEdges(spanmetrics.New(spanmetrics.Options{}))
	tr, shared := model.TraceID{2}, model.SpanID{1}
	call := model.Span{TraceID: tr, SpanID: model.SpanID{2}, ParentSpanID: shared, Service: "users"}
	db := model.Span{TraceID: tr, SpanID: model.SpanID{3}, ParentSpanID: call.SpanID, Service: "db"}
	server := model.Span{TraceID: tr, SpanID: model.SharedServerSpanID(tr, shared), ParentSpanID: shared, Service: "users"}
	client := model.Span{TraceID: tr, SpanID: shared, Service: "web"}
	for _, batch := range [][]model.Span{{call, db}, {server}, {client}} {
		e.observe("", batch)
	}
	for edge, want := range map[[2]string]float64{{"web", "users"}: 1, {"users", "db"}: 1, {"web", "db"}: 0} {
		if got := edgeCalls(t, e.metrics, edge[0], edge[1]); got != want {
			t.Errorf("%s→%s calls: got %v; want %v", edge[0], edge[1], got, want)
		}
	}
}
