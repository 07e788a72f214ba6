package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTargetsServeExposition: every target serves text exposition that
// the Prometheus parser takes, with the series count the report states,
// the SDK's names and labels, cumulative histograms and counters that
// grow, and the file_sd file lists every target under its datacenter.
func TestTargetsServeExposition(t *testing.T) {
	shape := metricsShape{targets: 6, series: 400, services: 4, dcs: 2, interval: time.Hour}
	ts, err := startTargets(shape)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	for i, addr := range ts.addrs {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("target %d: %v", i, err)
		}
		n := 0
		for name, mf := range mfs {
			for _, m := range mf.Metric {
				switch {
				case m.Histogram != nil:
					bs := m.Histogram.Bucket
					n += len(bs) + 2 // +Inf is implied by the parser, _sum, _count
					for j := 1; j < len(bs); j++ {
						if bs[j].GetCumulativeCount() < bs[j-1].GetCumulativeCount() {
							t.Errorf("%s: bucket %g below bucket %g", name, bs[j].GetUpperBound(), bs[j-1].GetUpperBound())
						}
					}
				default:
					n++
				}
				if strings.HasPrefix(name, "vigil_") {
					lbl := map[string]string{}
					for _, l := range m.Label {
						lbl[l.GetName()] = l.GetValue()
					}
					svc, grade, _ := shape.service(i)
					if lbl["service"] != svc || lbl["grade"] != grade {
						t.Errorf("target %d: %s has service %q grade %q; want %q %q", i, name, lbl["service"], lbl["grade"], svc, grade)
					}
				}
			}
		}
		if n != shape.seriesPerTarget() {
			t.Errorf("target %d: %d series; want %d", i, n, shape.seriesPerTarget())
		}
		for _, name := range []string{"vigil_http_requests_total", "vigil_http_request_duration_seconds", "vigil_grpc_requests_total",
			"vigil_http_inflight_requests", "process_cpu_seconds_total", "go_sched_gomaxprocs_threads"} {
			if mfs[name] == nil {
				t.Errorf("target %d: no %s", i, name)
			}
		}
	}

	// Counters grow from one tick to the next.
	parse := func(tick int64) map[string]float64 {
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(bytes.NewReader(shape.exposition(nil, "svc-0", "1", tick)))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, m := range mfs["vigil_http_requests_total"].Metric {
			k := ""
			for _, l := range m.Label {
				k += l.GetName() + "=" + l.GetValue() + ","
			}
			out[k] = m.Counter.GetValue()
		}
		return out
	}
	before, after := parse(100), parse(101)
	if len(before) == 0 || len(after) != len(before) {
		t.Fatalf("%d counters, then %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] <= v {
			t.Errorf("counter %s: %g then %g; want growth", k, v, after[k])
		}
	}

	var groups []struct {
		Labels  map[string]string `json:"labels"`
		Targets []string          `json:"targets"`
	}
	if err := json.Unmarshal(ts.fileSD(), &groups); err != nil {
		t.Fatalf("file_sd: %v\n%s", err, ts.fileSD())
	}
	seen := 0
	for _, g := range groups {
		for _, a := range g.Targets {
			for i, b := range ts.addrs {
				if a == b {
					if _, _, dc := shape.service(i); g.Labels["dc"] != dc {
						t.Errorf("target %s in dc %q; want %q", a, g.Labels["dc"], dc)
					}
					seen++
				}
			}
		}
	}
	if len(groups) != shape.dcs || seen != shape.targets {
		t.Errorf("file_sd: %d groups, %d targets; want %d, %d", len(groups), seen, shape.dcs, shape.targets)
	}
}

// TestDashboardQueries: the queries read out of the generated dashboard
// have every variable substituted and are valid PromQL.
func TestDashboardQueries(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/dashboards/golden-signals.json")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := dashboardQueries(data)
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	labels, panels := 0, 0
	for _, q := range qs {
		if _, err := p.ParseExpr(q.expr); err != nil {
			t.Errorf("%s: %q: %v", q.title, q.expr, err)
		}
		if q.label != "" {
			labels++
		} else {
			panels++
		}
	}
	if labels != 3 || panels < 10 {
		t.Errorf("%d variable queries, %d panel queries; want 3 and at least 10", labels, panels)
	}
	if want := `grade:vigil_http_requests:rate5m{grade=~".*"}`; qs[3].expr != want {
		t.Errorf("first panel query %q; want %q", qs[3].expr, want)
	}
	f := func(rng, want time.Duration) {
		t.Helper()
		if got := grafanaStep(rng); got != want {
			t.Errorf("step of %s: got %s; want %s", rng, got, want)
		}
	}
	f(time.Hour, 15*time.Second)
	f(6*time.Hour, 20*time.Second)
	f(24*time.Hour, time.Minute)
}

// TestBackfill: the recorded series' history arrives as remote write 1.0,
// oldest first, one series per service, grade and dc level.
func TestBackfill(t *testing.T) {
	var got []prompb.TimeSeries
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m, err := snappy.Decode(nil, b)
		var req prompb.WriteRequest
		if err == nil {
			err = req.Unmarshal(m)
		}
		if err != nil || r.Header.Get("Content-Encoding") != "snappy" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got = append(got, req.Timeseries...)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	shape := metricsShape{targets: 12, series: 100, services: 4, dcs: 3, interval: time.Second}
	qs := []dashQuery{{expr: `grade:x:rate5m{grade=~".*"}`}, {expr: `service_grade_dc:x:rate5m{dc=~".*"}`}, {expr: "up"}}
	n, err := backfill(strings.TrimPrefix(srv.URL, "http://"), qs, shape, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int64{} // last timestamp
	samples := 0
	for _, ts := range got {
		k := ""
		for _, l := range ts.Labels {
			k += l.Name + "=" + l.Value + ","
		}
		for _, s := range ts.Samples {
			if s.Timestamp <= series[k] {
				t.Fatalf("%s: sample at %d after %d", k, s.Timestamp, series[k])
			}
			series[k] = s.Timestamp
			samples++
		}
	}
	// 4 grades; 4 services × 3 dcs; "up" is no recorded series.
	if len(series) != 4+12 || samples != n || n < 16*54 {
		t.Errorf("%d series, %d samples (reported %d); want 16 series of about 55 samples", len(series), samples, n)
	}
}

// TestReport: the report is one Markdown table, every row as wide as the
// header, with the ratio of the two servers.
func TestReport(t *testing.T) {
	var out bytes.Buffer
	b := &metricsBench{out: &out, servers: []string{"vigil", "prometheus"}, dashboard: true,
		queries: []dashQuery{{title: "v", expr: "up", label: "job"}, {title: "p", expr: `a{b=~"x|y"}`}}, ranges: []time.Duration{time.Hour}}
	for i, name := range []string{"Vigil", "Prometheus"} {
		l := &latencies{perQuery: [][2]time.Duration{{time.Millisecond, 2 * time.Millisecond}, {3 * time.Millisecond, 4 * time.Millisecond}},
			series: []int{0, 5}, refresh: [2]time.Duration{5 * time.Millisecond, 6 * time.Millisecond}}
		b.results = append(b.results, &metricsResult{name: name, samplesPerSec: float64(2-i) * 1000, load: [2]string{"1 1 1", "2 2 2"}, dash: []*latencies{l}})
	}
	b.report()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	cols := func(l string) int { return strings.Count(strings.ReplaceAll(l, `\|`, ""), "|") }
	for _, l := range lines {
		if cols(l) != cols(lines[0]) {
			t.Errorf("row %q has %d columns; header %d", l, cols(l), cols(lines[0]))
		}
	}
	if !strings.Contains(out.String(), "| samples/s appended (prometheus_tsdb_head_samples_appended_total) | 2000 | 1000 | 2.00 |") {
		t.Errorf("no samples/s row with ratio 2.00:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `a{b=~"x\|y"}`) {
		t.Errorf("a | in a query is not escaped:\n%s", out.String())
	}
}
