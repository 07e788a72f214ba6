package spanmetrics

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	vmodel "github.com/vigilhq/vigil/internal/model"
)

func span(service, op string, kind vmodel.SpanKind, root bool, ms float64, status uint8, grade int) vmodel.Span {
	s := vmodel.Span{TraceID: vmodel.TraceID{1}, SpanID: vmodel.SpanID{2}, Service: service, Name: op, Kind: kind,
		Duration: int64(ms * 1e6), StatusCode: status, Grade: grade}
	if !root {
		s.ParentSpanID = vmodel.SpanID{3}
	}
	return s
}

// scrape serves reg as a scrape sees it (text format) and parses it back.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, req)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("cannot parse the exposition: %v\n%s", err, rec.Body.String())
	}
	return mfs
}

// value is the value of the series of family name with exactly the given
// labels (a counter's value, a histogram's count); -1 when absent.
func value(mfs map[string]*dto.MetricFamily, name string, lv map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			if l.GetValue() != "" {
				got[l.GetName()] = l.GetValue()
			}
		}
		if len(got) != len(lv) {
			continue
		}
		for k, v := range lv {
			if got[k] != v {
				continue next
			}
		}
		if m.GetHistogram() != nil {
			return float64(m.GetHistogram().GetSampleCount())
		}
		return m.GetCounter().GetValue()
	}
	return -1
}

// expectValues returns what checks the value of a series of mfs (see
// value).
func expectValues(t *testing.T, mfs map[string]*dto.MetricFamily) func(name string, lv map[string]string, want float64) {
	return func(name string, lv map[string]string, want float64) {
		t.Helper()
		if got := value(mfs, name, lv); got != want {
			t.Errorf("%s%v: got %v; want %v", name, lv, got, want)
		}
	}
}

func TestExposition(t *testing.T) {
	a := New(Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	a.Observe([]vmodel.Span{
		span("cart", "GET /cart", vmodel.SpanKindServer, false, 3, 0, 1),
		span("cart", "GET /cart", vmodel.SpanKindServer, false, 30, 2, 1),
		span("cart", "GET /cart", vmodel.SpanKindServer, false, 300, 2, 1),
		span("cart", "redis GET", vmodel.SpanKindClient, false, 1, 0, 1),   // a call out: not a request
		span("cart", "internal", vmodel.SpanKindInternal, false, 1, 0, 1),  // not a request
		span("cron", "nightly", vmodel.SpanKindInternal, true, 5000, 1, 0), // a root span is one
		span("", "consume", vmodel.SpanKindConsumer, false, 7, 0, 9),       // no service, no grade
	})
	a.ObserveEdge("web", "cart", 30*time.Millisecond, true)
	a.ObserveEdge("web", "cart", 10*time.Millisecond, false)
	a.ObserveEdge("cart", "cart", time.Millisecond, false)
	mfs := scrape(t, reg)

	cart := func(status string) map[string]string {
		return map[string]string{"service_name": "cart", "span_name": "GET /cart", "span_kind": "SPAN_KIND_SERVER", "status_code": status, "grade": "1"}
	}
	f := expectValues(t, mfs)
	f(CallsMetric, cart("STATUS_CODE_UNSET"), 1)
	f(CallsMetric, cart(StatusError), 2)
	f(DurationMetric, cart(StatusError), 2)
	f(CallsMetric, map[string]string{"service_name": "cart", "span_name": "redis GET", "span_kind": "SPAN_KIND_CLIENT", "status_code": "STATUS_CODE_UNSET", "grade": "1"}, -1)
	f(CallsMetric, map[string]string{"service_name": "cron", "span_name": "nightly", "span_kind": "SPAN_KIND_INTERNAL", "status_code": "STATUS_CODE_OK"}, 1)
	f(CallsMetric, map[string]string{"service_name": UnknownService, "span_name": "consume", "span_kind": "SPAN_KIND_CONSUMER", "status_code": "STATUS_CODE_UNSET"}, 1)
	f(EdgeCallsMetric, map[string]string{"parent": "web", "child": "cart"}, 2)
	f(EdgeErrorsMetric, map[string]string{"parent": "web", "child": "cart"}, 1)
	f(EdgeLatencyMetric, map[string]string{"parent": "web", "child": "cart"}, 2)
	f(EdgeCallsMetric, map[string]string{"parent": "cart", "child": "cart"}, -1)
	if n := len(mfs[CallsMetric].GetMetric()); n != 4 {
		t.Errorf("%d call series; want 4", n)
	}

	// The classic buckets are in milliseconds: 3 ms, 30 ms and 300 ms.
	var buckets []*dto.Bucket
	for _, m := range mfs[DurationMetric].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "status_code" && l.GetValue() == "STATUS_CODE_ERROR" {
				buckets = m.GetHistogram().GetBucket()
			}
		}
	}
	cum := map[float64]uint64{}
	for _, b := range buckets {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if cum[10] != 0 || cum[50] != 1 || cum[200] != 1 || cum[400] != 2 {
		t.Errorf("cumulative buckets of the 30 ms and 300 ms errors: got %v", cum)
	}
}

func TestServiceGrades(t *testing.T) {
	a := New(Options{ServiceGrades: map[string]int{"legacy": 2, "cart": 4}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	a.Observe([]vmodel.Span{
		span("legacy", "GET /", vmodel.SpanKindServer, true, 1, 0, 0), // no grade of its own: the configured one
		span("cart", "GET /", vmodel.SpanKindServer, true, 1, 0, 1),   // its own grade wins
	})
	mfs := scrape(t, reg)
	lv := func(svc, grade string) map[string]string {
		return map[string]string{"service_name": svc, "span_name": "GET /", "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET", "grade": grade}
	}
	for _, c := range []struct{ svc, grade string }{{"legacy", "2"}, {"cart", "1"}} {
		if got := value(mfs, CallsMetric, lv(c.svc, c.grade)); got != 1 {
			t.Errorf("calls of %s with grade %s: got %v; want 1", c.svc, c.grade, got)
		}
	}
}

func TestCardinalityCap(t *testing.T) {
	a := New(Options{MaxOperationsPerService: 3, MaxSeries: 6})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	var spans []vmodel.Span
	for _, op := range []string{"a", "b", "c", "d", "e", "a"} {
		spans = append(spans, span("svc1", op, vmodel.SpanKindServer, false, 1, 0, 2))
	}
	a.Observe(spans) // a, b, c, other: 4 series
	a.ObserveEdge("svc1", "svc2", time.Millisecond, false)
	a.Observe([]vmodel.Span{span("svc2", "x", vmodel.SpanKindServer, false, 1, 0, 2)}) // the 6th series
	a.Observe([]vmodel.Span{span("svc3", "y", vmodel.SpanKindServer, false, 1, 0, 2),
		span("svc4", "z", vmodel.SpanKindServer, false, 1, 0, 2)}) // past the cap: other/other
	a.ObserveEdge("svc3", "svc4", time.Millisecond, false)
	mfs := scrape(t, reg)

	lv := func(svc, op string) map[string]string {
		return map[string]string{"service_name": svc, "span_name": op, "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET", "grade": "2"}
	}
	f := expectValues(t, mfs)
	f(CallsMetric, lv("svc1", "a"), 2)
	f(CallsMetric, lv("svc1", "d"), -1)
	f(CallsMetric, lv("svc1", Other), 2)
	f(CallsMetric, lv("svc2", "x"), 1)
	f(CallsMetric, lv(Other, Other), 2)
	f(EdgeCallsMetric, map[string]string{"parent": "svc1", "child": "svc2"}, 1)
	f(EdgeCallsMetric, map[string]string{"parent": Other, "child": Other}, 1)
	f("vigil_spanmetrics_folded_spans_total", map[string]string{"reason": "operations"}, 2)
	f("vigil_spanmetrics_folded_spans_total", map[string]string{"reason": "series"}, 3)
	if got := mfs["vigil_spanmetrics_series"].GetMetric()[0].GetGauge().GetValue(); got != 8 {
		t.Errorf("series: got %v; want 8 (the cap of 6, other/other and other → other)", got)
	}
}

// TestTenantCap: a tenant past its own cap folds its new series into its
// own other/other, and another tenant still gets new series of its own.
func TestTenantCap(t *testing.T) {
	caps := map[string]int{"noisy": 3}
	a := New(Options{MaxSeries: 100, TenantMaxSeries: func(tenant string) int { return caps[tenant] }})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	var spans []vmodel.Span
	for i := range 10 {
		spans = append(spans, span(fmt.Sprintf("svc%d", i), "op", vmodel.SpanKindServer, false, 1, 0, 2))
	}
	a.ObserveTenant("noisy", spans) // 3 series, then other/other
	a.ObserveEdgeTenant("noisy", "svc0", "svc1", time.Millisecond, false)
	a.ObserveTenant("quiet", spans[:5])
	a.ObserveTenant("default", spans[:5]) // no cap of its own
	mfs := scrape(t, reg)
	lv := func(svc, tenant string) map[string]string {
		m := map[string]string{"service_name": svc, "span_name": "op", "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET", "grade": "2"}
		if tenant != "" {
			m[LabelTenant] = tenant
		}
		if svc == Other {
			m["span_name"] = Other
		}
		return m
	}
	f := expectValues(t, mfs)
	f(CallsMetric, lv("svc2", "noisy"), 1)
	f(CallsMetric, lv("svc3", "noisy"), -1)
	f(CallsMetric, lv(Other, "noisy"), 7)
	f(EdgeCallsMetric, map[string]string{"parent": Other, "child": Other, LabelTenant: "noisy"}, 1)
	f(CallsMetric, lv("svc4", "quiet"), 1)
	f(CallsMetric, lv("svc4", ""), 1)
	f("vigil_spanmetrics_folded_spans_total", map[string]string{"reason": "tenant_series"}, 8)
	f("vigil_spanmetrics_folded_spans_total", map[string]string{"reason": "series"}, 0)
}

func TestLabelValue(t *testing.T) {
	f := func(in string, n int, want string) {
		t.Helper()
		if got := labelValue(in, n); got != want {
			t.Errorf("labelValue(%q, %d): got %q; want %q", in, n, got, want)
		}
	}
	f("GET /cart", 128, "GET /cart")
	f("héllo", 2, "h") // é is two bytes: not cut in half
	f("héllo", 3, "hé")
	f("a\xffb", 128, "a\uFFFDb")
	// A span whose names are not UTF-8 is counted, not a panic.
	a := New(Options{})
	a.Observe([]vmodel.Span{span("sv\xc3", "op\xff", vmodel.SpanKindServer, true, 1, 0, 0)})
	a.ObserveEdge("p\xff", "c", time.Millisecond, false)
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	if got := value(scrape(t, reg), CallsMetric, map[string]string{"service_name": "sv\uFFFD", "span_name": "op\uFFFD",
		"span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET"}); got != 1 {
		t.Errorf("calls of a service named in bad UTF-8: got %v; want 1", got)
	}
}

func BenchmarkObserve(b *testing.B) {
	a := New(Options{})
	spans := make([]vmodel.Span, 1000)
	for i := range spans {
		spans[i] = span("svc"+string(rune('a'+i%20)), "op"+string(rune('a'+i%50)), vmodel.SpanKindServer, false, float64(i%300), uint8(i%3), 1+i%4)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		a.Observe(spans)
	}
	b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
}
