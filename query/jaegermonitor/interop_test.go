package jaegermonitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// tool is the path of a third-party program: env, else find(); the test
// skips without it unless VIGIL_REQUIRE_SERVICES=1.
func tool(t *testing.T, env string, find func() (string, error)) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := find()
	if err == nil && p != "" {
		return p
	}
	msg := fmt.Sprintf("%s not found (%v): set %s", env, err, env)
	if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func start(t *testing.T, name string, p *childproc.Process) {
	t.Helper()
	var log bytes.Buffer
	p.Stdout, p.Stderr = &log, &log
	if err := p.Start(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, log.String())
	}
	t.Cleanup(func() {
		if err := p.Stop(15 * time.Second); err != nil && !errors.As(err, new(*exec.ExitError)) {
			t.Errorf("%s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
}

// TestSameAnswersAsJaeger: a real Prometheus scrapes the aggregator's
// /metrics, a real jaeger-query (v1, deploy/local/jaeger-query.sh) reads
// that Prometheus, and this API reads the same spans written into a TSDB:
// both answer the Monitor tab's three queries with the same families,
// labels, timestamps and, within sampling, values.
func TestSameAnswersAsJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus and jaeger-query for 40 seconds")
	}
	promBin := tool(t, "VIGIL_PROMETHEUS_BINARY", func() (string, error) { return exec.LookPath("prometheus") })
	jqBin := tool(t, "VIGIL_JAEGER_QUERY", func() (string, error) {
		out, err := exec.Command("../../deploy/local/jaeger-query.sh", "path", "jaeger-query").Output()
		return strings.TrimSpace(string(out)), err
	})

	// checkout serves GET /cart 20 times a second, one call in four fails,
	// latencies uniform from 0.5 to 99.5 ms.
	a := spanmetrics.New(spanmetrics.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	metricsSrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metricsSrv.Close()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := spanmetrics.NewWriter(spanmetrics.WriterOptions{Interval: time.Second}, a, db)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	wg.Go(func() {
		// Each tick observes the spans due by then, so a tick that a busy
		// machine delays or drops does not lower the rate.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		t0 := time.Now()
		for n := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for due := int(time.Since(t0) / (50 * time.Millisecond)); n < due; n++ {
				s := model.Span{Service: "checkout", Name: "GET /cart", Kind: model.SpanKindServer, ParentSpanID: model.SpanID{1},
					Duration: int64((float64(n%100) + 0.5) * 1e6)}
				if n%4 == 0 {
					s.StatusCode = 2
				}
				a.Observe([]model.Span{s})
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	target := strings.TrimPrefix(metricsSrv.URL, "http://")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ingester\n    static_configs:\n      - targets: ['"+target+"']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := mustFreePort(t)
	start(t, "prometheus", &childproc.Process{Binary: promBin, Args: []string{"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + promAddr},
		Ready: promAddr, ReadyPath: "/-/ready"})
	jqAddr := mustFreePort(t)
	start(t, "jaeger-query", &childproc.Process{Binary: jqBin, Args: []string{
		"--prometheus.server-url=http://" + promAddr, "--prometheus.query.normalize-calls=true",
		"--prometheus.query.normalize-duration=true", "--query.http-server.host-port=" + jqAddr,
		"--query.grpc-server.host-port=" + mustFreePort(t), "--admin.http.host-port=" + mustFreePort(t), "--log-level=warn"},
		Env:   append(os.Environ(), "SPAN_STORAGE_TYPE=memory", "METRICS_STORAGE_TYPE=prometheus"),
		Ready: jqAddr, ReadyPath: "/api/services"})

	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	mux := http.NewServeMux()
	New(Options{}, engine, db).RegisterHTTP(mux)
	ours := httptest.NewServer(mux)
	defer ours.Close()

	time.Sleep(35 * time.Second) // the first 10 s rate windows start after the first scrape
	end := time.Now().Add(-2 * time.Second).UnixMilli()
	q := fmt.Sprintf("service=checkout&groupByOperation=true&endTs=%d&lookback=10000&step=2000&ratePer=10000", end)
	for _, c := range []struct {
		path      string
		want, tol float64
	}{
		{"/api/metrics/calls?" + q, 20, 0.15},
		{"/api/metrics/errors?" + q, 0.25, 0.2},
		{"/api/metrics/latencies?quantile=0.95&" + q, 95, 0.1},
	} {
		theirs, mine := fetchFamily(t, "http://"+jqAddr+c.path), fetchFamily(t, ours.URL+c.path)
		if theirs.Name != mine.Name || theirs.Type != mine.Type || theirs.Help != mine.Help {
			t.Errorf("%s: family %q %q %q; jaeger-query's %q %q %q", c.path, mine.Name, mine.Type, mine.Help, theirs.Name, theirs.Type, theirs.Help)
		}
		if len(theirs.Metrics) != 1 || len(mine.Metrics) != 1 {
			t.Errorf("%s: %d series; jaeger-query's %d; want 1", c.path, len(mine.Metrics), len(theirs.Metrics))
			continue
		}
		tm, mm := theirs.Metrics[0], mine.Metrics[0]
		if got, want := labelPairs(mm.Labels), labelPairs(tm.Labels); got != want {
			t.Errorf("%s: labels %s; jaeger-query's %s", c.path, got, want)
		}
		if len(mm.MetricPoints) != len(tm.MetricPoints) {
			t.Errorf("%s: %d points; jaeger-query's %d", c.path, len(mm.MetricPoints), len(tm.MetricPoints))
			continue
		}
		for i := range mm.MetricPoints {
			mp, tp := mm.MetricPoints[i], tm.MetricPoints[i]
			if mp.Timestamp != tp.Timestamp {
				t.Errorf("%s: point %d at %s; jaeger-query's at %s", c.path, i, mp.Timestamp, tp.Timestamp)
			}
			for who, v := range map[string]float64{"ours": mp.GaugeValue.DoubleValue, "jaeger-query's": tp.GaugeValue.DoubleValue} {
				if math.Abs(v-c.want) > c.tol*c.want {
					t.Errorf("%s: %s point %d is %v; want %v ± %.0f%%", c.path, who, i, v, c.want, c.tol*100)
				}
			}
		}
		t.Logf("%s: ours %v, jaeger-query's %v", c.path[:strings.Index(c.path, "?")], mm.MetricPoints[0].GaugeValue.DoubleValue, tm.MetricPoints[0].GaugeValue.DoubleValue)
	}
}

type looseFamily struct {
	Name, Type, Help string
	Metrics          []struct {
		Labels       []label
		MetricPoints []struct {
			GaugeValue struct{ DoubleValue float64 }
			Timestamp  string
		}
	}
}

func fetchFamily(t *testing.T, url string) looseFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	var fam looseFamily
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b.String())
	}
	if err := json.Unmarshal(b.Bytes(), &fam); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b.String())
	}
	return fam
}

func labelPairs(ls []label) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.Name+"="+l.Value)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

func mustFreePort(t *testing.T) string {
	t.Helper()
	addr, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
