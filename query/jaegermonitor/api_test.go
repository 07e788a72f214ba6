package jaegermonitor

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/spanmetrics"
)

func TestMain(m *testing.M) {
	// The TSDB's and the PromQL engine's own background goroutines.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/prometheus/prometheus/tsdb.(*DB).run"))
}

// t0 is when the synthetic services start; they run for 20 minutes.
var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

const (
	runFor   = 20 * time.Minute
	interval = 15 * time.Second
)

// synthetic writes 20 minutes of spans into a real TSDB through a
// spanmetrics.Writer, every 15 s as a scrape would:
//   - checkout, GET /cart: 10 requests/s, 10% errors, latencies uniform
//     from 0.5 to 99.5 ms;
//   - checkout, POST /pay: 2 requests/s, 50% errors, latencies uniform
//     from 200.5 to 299.5 ms;
//   - frontend, GET /: 1 request/s, no errors;
//   - checkout's calls out (client spans), 5/s, which are not requests.
func synthetic(t *testing.T, dst storage.Appendable) {
	t.Helper()
	a := spanmetrics.New(spanmetrics.Options{})
	w := spanmetrics.NewWriter(spanmetrics.WriterOptions{}, a, dst)
	secs := int(interval / time.Second)
	var n int // latency counter, so that every 100 spans cover the range
	mk := func(service, op string, kind model.SpanKind, count, errEvery int, base float64) []model.Span {
		spans := make([]model.Span, count)
		for i := range spans {
			s := model.Span{TraceID: model.TraceID{1}, SpanID: model.SpanID{1}, ParentSpanID: model.SpanID{2},
				Service: service, Name: op, Kind: kind, Grade: 1, Duration: int64((base + float64(n%100) + 0.5) * 1e6)}
			n++
			if errEvery > 0 && i%errEvery == 0 {
				s.StatusCode = 2
			}
			spans[i] = s
		}
		return spans
	}
	for ts := t0; !ts.After(t0.Add(runFor)); ts = ts.Add(interval) {
		a.Observe(mk("checkout", "GET /cart", model.SpanKindServer, 10*secs, 10, 0))
		a.Observe(mk("checkout", "POST /pay", model.SpanKindServer, 2*secs, 2, 200))
		a.Observe(mk("frontend", "GET /", model.SpanKindServer, secs, 0, 0))
		a.Observe(mk("checkout", "redis GET", model.SpanKindClient, 5*secs, 0, 0))
		if err := w.Write(context.Background(), ts); err != nil {
			t.Fatal(err)
		}
	}
}

type fixture struct {
	srv *httptest.Server
	reg *prometheus.Registry
}

// newFixture serves the API over a TSDB holding the synthetic services;
// classicOnly drops the native histograms, as a scrape that took only the
// classic buckets would.
func newFixture(t *testing.T, classicOnly bool) *fixture {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var dst storage.Appendable = db
	if classicOnly {
		dst = classicAppendable{db}
	}
	synthetic(t, dst)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	reg := prometheus.NewRegistry()
	api := New(Options{Registerer: reg, now: func() time.Time { return t0.Add(runFor) }}, engine, db)
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, reg: reg}
}

type classicAppendable struct{ storage.Appendable }

func (c classicAppendable) Appender(ctx context.Context) storage.Appender {
	return classicAppender{c.Appendable.Appender(ctx)}
}

type classicAppender struct{ storage.Appender }

func (classicAppender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, nil
}

// get fetches path and decodes the family; the status must be 200.
func (f *fixture) get(t *testing.T, path string) family {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	var fam struct {
		Name, Type, Help string
		Metrics          []struct {
			Labels       []label
			MetricPoints []struct {
				GaugeValue struct{ DoubleValue json.RawMessage }
				Timestamp  string
			}
		}
	}
	if err := json.Unmarshal(raw, &fam); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, raw)
	}
	out := family{Name: fam.Name, Type: fam.Type, Help: fam.Help}
	for _, m := range fam.Metrics {
		om := &metric{Labels: m.Labels}
		for _, p := range m.MetricPoints {
			ts, err := time.Parse(time.RFC3339Nano, p.Timestamp)
			if err != nil {
				t.Fatalf("GET %s: timestamp %q: %v", path, p.Timestamp, err)
			}
			var v float64
			if s := string(p.GaugeValue.DoubleValue); strings.HasPrefix(s, `"`) {
				v = math.NaN()
			} else if v, err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("GET %s: value %s: %v", path, s, err)
			}
			om.MetricPoints = append(om.MetricPoints, point{GaugeValue: gauge{DoubleValue: protoDouble(v)}, Timestamp: timestamp(ts.UnixMilli())})
		}
		out.Metrics = append(out.Metrics, om)
	}
	return out
}

// series returns the points of the metric with exactly the labels lv
// (name=value, sorted by name), in whatever order the response has them.
func series(t *testing.T, fam family, lv ...string) []point {
	t.Helper()
	for _, m := range fam.Metrics {
		var got []string
		for _, l := range m.Labels {
			got = append(got, l.Name+"="+l.Value)
		}
		slices.Sort(got)
		if strings.Join(got, " ") == strings.Join(lv, " ") {
			return m.MetricPoints
		}
	}
	t.Fatalf("%s: no series %v among %d", fam.Name, lv, len(fam.Metrics))
	return nil
}

// query is the common part of the Monitor tab's queries: the last 10
// minutes, a point a minute, rates over 5 minutes.
const query = "endTs=%d&lookback=600000&step=60000&ratePer=300000"

func path(endpoint, extra string) string {
	return "/api/metrics/" + endpoint + "?" + strings.Replace(query, "%d", strconv.FormatInt(t0.Add(runFor).UnixMilli(), 10), 1) + extra
}

// expect checks every point of pts against want within tol (relative).
func expect(t *testing.T, what string, pts []point, want, tol float64) {
	t.Helper()
	if len(pts) > 0 {
		t.Logf("%s: %v; want %v", what, pts[0].GaugeValue.DoubleValue, want)
	}
	if len(pts) != 11 {
		t.Errorf("%s: %d points; want 11, one a minute over 10 minutes", what, len(pts))
	}
	for _, p := range pts {
		if got := float64(p.GaugeValue.DoubleValue); math.Abs(got-want) > tol*want {
			t.Errorf("%s at %s: got %v; want %v ± %.1f%%", what, time.UnixMilli(int64(p.Timestamp)).UTC().Format(time.TimeOnly), got, want, tol*100)
			return
		}
	}
}

func TestGoldenSignals(t *testing.T) {
	f := newFixture(t, false)

	calls := f.get(t, path("calls", "&service=checkout&service=frontend"))
	if calls.Name != "service_call_rate" || calls.Type != "GAUGE" {
		t.Errorf("calls family: %q of type %q; want service_call_rate, GAUGE", calls.Name, calls.Type)
	}
	expect(t, "calls/s of checkout", series(t, calls, "service_name=checkout"), 12, 1e-9)
	expect(t, "calls/s of frontend", series(t, calls, "service_name=frontend"), 1, 1e-9)

	byOp := f.get(t, path("calls", "&service=checkout&groupByOperation=true"))
	if byOp.Name != "service_operation_call_rate" {
		t.Errorf("calls by operation: family %q", byOp.Name)
	}
	expect(t, "calls/s of GET /cart", series(t, byOp, "operation=GET /cart", "service_name=checkout"), 10, 1e-9)
	expect(t, "calls/s of POST /pay", series(t, byOp, "operation=POST /pay", "service_name=checkout"), 2, 1e-9)
	if len(byOp.Metrics) != 2 {
		t.Errorf("checkout's operations: %d; want 2 (its client spans are not requests)", len(byOp.Metrics))
	}
	// Calls out are the callee's requests, not the caller's: the client
	// kind of the Monitor tab has none but root spans.
	clients := f.get(t, path("calls", "&service=checkout&groupByOperation=true&spanKind=client"))
	if len(clients.Metrics) != 0 {
		t.Errorf("client calls of checkout: %d series; want none", len(clients.Metrics))
	}
	both := f.get(t, path("calls", "&service=checkout&spanKind=client&spanKind=server"))
	expect(t, "client and server calls/s of checkout", series(t, both, "service_name=checkout"), 12, 1e-9)

	errs := f.get(t, path("errors", "&service=checkout&service=frontend"))
	expect(t, "error ratio of checkout", series(t, errs, "service_name=checkout"), 3.0/18, 1e-9)
	// frontend has calls and no errors: 0, not no data.
	for _, p := range series(t, errs, "service_name=frontend") {
		if p.GaugeValue.DoubleValue != 0 {
			t.Errorf("error ratio of frontend: got %v; want 0", p.GaugeValue.DoubleValue)
		}
	}
	errsByOp := f.get(t, path("errors", "&service=checkout&groupByOperation=true"))
	expect(t, "error ratio of GET /cart", series(t, errsByOp, "operation=GET /cart", "service_name=checkout"), 0.1, 1e-9)
	expect(t, "error ratio of POST /pay", series(t, errsByOp, "operation=POST /pay", "service_name=checkout"), 0.5, 1e-9)
	onlyFrontend := f.get(t, path("errors", "&service=frontend"))
	if len(onlyFrontend.Metrics) != 1 {
		t.Errorf("errors of frontend alone: %d series; want 1 of zeros", len(onlyFrontend.Metrics))
	}

	// Latencies from the native histogram: within its bucket width (a
	// factor of 2^(1/8), 9%).
	lat := f.get(t, path("latencies", "&service=checkout&groupByOperation=true&quantile=0.95"))
	if lat.Name != "service_operation_latencies" || lat.Help != "0.95th quantile latency, grouped by service & operation" {
		t.Errorf("latencies family: %q, %q", lat.Name, lat.Help)
	}
	expect(t, "p95 of GET /cart", series(t, lat, "operation=GET /cart", "service_name=checkout"), 95, 0.09)
	p50 := f.get(t, path("latencies", "&service=checkout&groupByOperation=true&quantile=0.5"))
	expect(t, "p50 of POST /pay", series(t, p50, "operation=POST /pay", "service_name=checkout"), 250, 0.09)
	none := f.get(t, path("latencies", "&service=nobody&quantile=0.5"))
	if len(none.Metrics) != 0 {
		t.Errorf("latencies of an unknown service: %d series; want none", len(none.Metrics))
	}
}

// TestGoldenSignalsClassicBuckets: without native histograms the
// latencies come from the classic buckets, within their width.
func TestGoldenSignalsClassicBuckets(t *testing.T) {
	f := newFixture(t, true)
	lat := f.get(t, path("latencies", "&service=checkout&groupByOperation=true&quantile=0.95"))
	// 95 ms lies in the bucket (50, 100]; uniform latencies interpolate
	// linearly to the exact value.
	expect(t, "p95 of GET /cart", series(t, lat, "operation=GET /cart", "service_name=checkout"), 95, 0.01)
	p50 := f.get(t, path("latencies", "&service=checkout&groupByOperation=true&quantile=0.5"))
	// 250 ms lies in the bucket (200, 400]: the classic answer is only
	// known to be in it.
	for _, p := range series(t, p50, "operation=POST /pay", "service_name=checkout") {
		if v := float64(p.GaugeValue.DoubleValue); v < 200 || v > 400 {
			t.Errorf("p50 of POST /pay from classic buckets: got %v; want within (200, 400]", v)
		}
	}
}

func TestBadParams(t *testing.T) {
	f := newFixture(t, false)
	cases := []struct{ path, param string }{
		{"/api/metrics/calls", "service"},
		{"/api/metrics/calls?service=", "service"},
		{"/api/metrics/calls?service=a&groupByOperation=maybe", "groupByOperation"},
		{"/api/metrics/calls?service=a&spanKind=server&spanKind=sideways", "spanKind"},
		{"/api/metrics/errors?service=a&endTs=yesterday", "endTs"},
		{"/api/metrics/errors?service=a&lookback=-5", "lookback"},
		{"/api/metrics/calls?service=a&step=0", "step"},
		{"/api/metrics/calls?service=a&lookback=86400000&step=1", "step"},
		{"/api/metrics/calls?service=a&ratePer=1m", "ratePer"},
		{"/api/metrics/latencies?service=a", "quantile"},
		{"/api/metrics/latencies?service=a&quantile=1.5", "quantile"},
		{"/api/metrics/latencies?service=a&quantile=NaN", "quantile"},
		{"/api/metrics/calls?" + strings.Repeat("service=a&", 101), "service"},
	}
	for _, c := range cases {
		resp, err := http.Get(f.srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var body envelope
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if resp.StatusCode != http.StatusBadRequest || len(body.Errors) != 1 || body.Errors[0].Code != 400 ||
			!strings.HasPrefix(body.Errors[0].Msg, "parameter "+c.param+": ") {
			t.Errorf("%s: %d %+v; want 400 naming parameter %s", c.path, resp.StatusCode, body.Errors, c.param)
		}
	}
	if got := badParams(t, f.reg, "quantile"); got != 3 {
		t.Errorf("bad quantile requests counted: %v; want 3", got)
	}
}

// badParams is vigil_jaeger_monitor_bad_params_total{param}.
func badParams(t *testing.T, reg *prometheus.Registry, param string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "vigil_jaeger_monitor_bad_params_total" && m.GetLabel()[0].GetValue() == param {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestMinStep(t *testing.T) {
	f := newFixture(t, false)
	resp, err := http.Get(f.srv.URL + "/api/metrics/minstep")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body["data"] != 1.0 {
		t.Errorf("minstep: %d %v; want 200 and data 1 (ms)", resp.StatusCode, body)
	}
}
