package federation

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
)

const leafMetrics = `# HELP vigil_test_requests_total Requests served.
# TYPE vigil_test_requests_total counter
vigil_test_requests_total{route="/a",code="200"} 42
vigil_test_requests_total{route="/a",code="500"} 3
vigil_test_requests_total{route="/b",code="200"} 7
# HELP vigil_test_in_flight Requests in flight.
# TYPE vigil_test_in_flight gauge
vigil_test_in_flight 5
`

// values answers query on c as "labels=value" lines, sorted, without the
// labels in drop.
func values(t *testing.T, c promv1.API, query string, drop ...string) (string, error) {
	t.Helper()
	v, _, _, err := c.Query(context.Background(), query, time.Now())
	if err != nil {
		return "", err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return "", fmt.Errorf("%s: got %s, want a vector", query, v.Type())
	}
	var lines []string
	for _, s := range vec {
		for _, d := range drop {
			delete(s.Metric, model.LabelName(d))
		}
		lines = append(lines, fmt.Sprintf("%s=%s", s.Metric, s.Value))
	}
	sortStrings(lines)
	return strings.Join(lines, "\n"), nil
}

func expect(t *testing.T, c promv1.API, query, want string, drop ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() error {
		got, err := values(t, c, query, drop...)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s:\ngot  %s\nwant %s", query, got, want)
		}
		return nil
	})
}

// Vigil, as the upper level, federates a leaf Prometheus: honor_labels
// keeps the leaf's job and instance, match[] selects what comes up.
func TestFederatesRealPrometheus(t *testing.T) {
	t.Parallel()
	leaf := exposition(t, leafMetrics)
	prom := startPrometheus(t, fmt.Sprintf(`
global: {scrape_interval: 1s, external_labels: {dc: leaf1}}
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
`, hostOf(leaf)))
	fed := startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {'match[]': ['{job="svc",code="200"}']}
    static_configs: [{targets: ['%s']}]
`, strings.TrimPrefix(prom, "http://")))
	c := client(t, fed.url)
	expect(t, c, `vigil_test_requests_total`,
		fmt.Sprintf(`vigil_test_requests_total{code="200", dc="leaf1", instance="%[1]s", job="svc", route="/a"}=42
vigil_test_requests_total{code="200", dc="leaf1", instance="%[1]s", job="svc", route="/b"}=7`, hostOf(leaf)))
	expect(t, c, `up{job="federate"}`, fmt.Sprintf(`up{instance="%s", job="federate"}=1`, strings.TrimPrefix(prom, "http://")))
}

// A real Prometheus federates Vigil's /federate and sees Vigil's values,
// with Vigil's external labels.
func TestRealPrometheusFederatesVigil(t *testing.T) {
	t.Parallel()
	leaf := exposition(t, leafMetrics)
	fed := startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s, external_labels: {dc: vigil1}}
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
`, hostOf(leaf)))
	prom := startPrometheus(t, fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {'match[]': ['{job="svc"}']}
    static_configs: [{targets: ['%s']}]
`, fed.addr))
	const q = `sum by (dc, job, code) (vigil_test_requests_total)`
	expect(t, client(t, fed.url), q, `{code="200", job="svc"}=49
{code="500", job="svc"}=3`)
	expect(t, client(t, prom), q, `{code="200", dc="vigil1", job="svc"}=49
{code="500", dc="vigil1", job="svc"}=3`)
	expect(t, client(t, prom), `vigil_test_in_flight`,
		fmt.Sprintf(`vigil_test_in_flight{dc="vigil1", instance="%s", job="svc"}=5`, hostOf(leaf)))
}

// A real Prometheus remote-writes what it scrapes into Vigil.
func TestRealPrometheusRemoteWritesIntoVigil(t *testing.T) {
	t.Parallel()
	leaf := exposition(t, leafMetrics)
	fed := startFed(t, t.TempDir(), "")
	startPrometheus(t, fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 200ms}
`, hostOf(leaf), fed.url))
	expect(t, client(t, fed.url), `sum by (job) (vigil_test_requests_total)`, `{job="svc"}=52`)
}

// Vigil remote-writes what it scrapes into a real Prometheus started with
// its remote-write receiver.
func TestVigilRemoteWritesIntoRealPrometheus(t *testing.T) {
	t.Parallel()
	leaf := exposition(t, leafMetrics)
	prom := startPrometheus(t, "global: {scrape_interval: 1m}\n", "--web.enable-remote-write-receiver")
	startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s, external_labels: {dc: vigil1}}
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 200ms}
`, hostOf(leaf), prom))
	expect(t, client(t, prom), `sum by (dc, job) (vigil_test_requests_total)`, `{dc="vigil1", job="svc"}=52`)
}

// The Prometheus Go API client gets the same answers from Vigil as from
// the real Prometheus: both scrape the same target, and both take the same
// remote-written samples (fixed timestamps, so ranges compare exactly).
func TestSameAnswersAsRealPrometheus(t *testing.T) {
	t.Parallel()
	leaf := exposition(t, leafMetrics)
	scrape := fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
`, hostOf(leaf))
	prom := startPrometheus(t, scrape, "--web.enable-remote-write-receiver")
	fed := startFed(t, t.TempDir(), scrape)

	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	var ts []prompb.TimeSeries
	for _, svc := range []string{"api", "db"} {
		s := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "vigil_test_pushed_total"}, {Name: "job", Value: "push"}, {Name: "service", Value: svc}}}
		for i := range 60 {
			s.Samples = append(s.Samples, prompb.Sample{Timestamp: base.Add(time.Duration(i)*5*time.Second + 2500*time.Millisecond).UnixMilli(), Value: float64(i * i * len(svc))})
		}
		ts = append(ts, s)
	}
	for _, url := range []string{prom, fed.url} {
		if code, body := remoteWrite(t, url, ts); code/100 != 2 {
			t.Fatalf("remote write to %s: %d %s", url, code, body)
		}
	}
	cp, cv := client(t, prom), client(t, fed.url)
	for _, q := range []string{`vigil_test_requests_total`, `sum by (code) (vigil_test_requests_total)`, `vigil_test_in_flight * 2`, `up{job="svc"}`} {
		want := ""
		waitFor(t, 30*time.Second, func() error {
			var err error
			want, err = values(t, cp, q)
			if err == nil && want == "" {
				err = fmt.Errorf("%s: no answer from Prometheus yet", q)
			}
			return err
		})
		expect(t, cv, q, want)
	}
	ctx := context.Background()
	r := promv1.Range{Start: base, End: base.Add(5 * time.Minute), Step: 15 * time.Second}
	for _, q := range []string{`vigil_test_pushed_total`, `rate(vigil_test_pushed_total[1m])`, `sum(increase(vigil_test_pushed_total[2m]))`} {
		pv, _, _, err := cp.QueryRange(ctx, q, r)
		if err != nil {
			t.Fatal(err)
		}
		vv, _, _, err := cv.QueryRange(ctx, q, r)
		if err != nil {
			t.Fatal(err)
		}
		if pv.String() != vv.String() {
			t.Errorf("query_range %s:\nPrometheus %s\nVigil      %s", q, pv, vv)
		}
	}
	start, end := base, time.Now()
	// same asks both the same question and compares the answers.
	same := func(what string, n int, ask func(c promv1.API) (any, int, error)) {
		t.Helper()
		p, _, err := ask(cp)
		if err != nil {
			t.Fatalf("%s from Prometheus: %v", what, err)
		}
		v, got, err := ask(cv)
		if err != nil {
			t.Fatalf("%s from Vigil: %v", what, err)
		}
		if fmt.Sprint(p) != fmt.Sprint(v) || got != n {
			t.Errorf("%s: Prometheus %v, Vigil %v (want %d)", what, p, v, n)
		}
	}
	same("label values", 2, func(c promv1.API) (any, int, error) {
		v, _, _, err := c.LabelValues(ctx, "service", []string{`vigil_test_pushed_total`}, start, end)
		return v, len(v), err
	})
	same("label names", 5, func(c promv1.API) (any, int, error) {
		v, _, _, err := c.LabelNames(ctx, []string{`vigil_test_requests_total`}, start, end)
		return v, len(v), err
	})
	same("series", 2, func(c promv1.API) (any, int, error) {
		v, _, _, err := c.Series(ctx, []string{`vigil_test_pushed_total`}, start, end)
		return v, len(v), err
	})
	same("metadata", 1, func(c promv1.API) (any, int, error) {
		v, err := c.Metadata(ctx, "vigil_test_requests_total", "")
		return v, len(v), err
	})
	vt, err := cv.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vt.Active) != 1 || vt.Active[0].Health != promv1.HealthGood || vt.Active[0].ScrapeURL != "http://"+hostOf(leaf)+"/metrics" {
		t.Errorf("targets: got %+v, want the one healthy target", vt.Active)
	}
	if _, err := cv.Buildinfo(ctx); err != nil {
		t.Errorf("buildinfo: %v", err)
	}
	for _, c := range []promv1.API{cp, cv} {
		if _, err := c.Rules(ctx, nil); err != nil {
			t.Errorf("rules: %v", err)
		}
		if _, err := c.Alerts(ctx); err != nil {
			t.Errorf("alerts: %v", err)
		}
	}
	// Grafana's data source sends queries as form POSTs.
	resp, err := http.PostForm(fed.url+"/api/v1/query", map[string][]string{"query": {"sum(vigil_test_in_flight)"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /api/v1/query: %s", resp.Status)
	}
}

// An alerting rule of rule_files fires and reaches a real Alertmanager.
func TestAlertReachesRealAlertmanager(t *testing.T) {
	t.Parallel()
	bin := binary(t, "prometheus-alertmanager")
	dir := t.TempDir()
	amCfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amCfg, []byte("route: {receiver: none}\nreceivers: [{name: none}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	amAddr := freeAddr(t)
	startProcess(t, "http://"+amAddr+"/-/ready", bin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=", "--log.level=warn")
	rulesFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesFile, []byte(`
groups:
  - name: test
    interval: 1s
    rules:
      - record: job:vigil_test_in_flight:sum
        expr: sum by (job) (vigil_test_in_flight)
      - alert: VigilTestTooBusy
        expr: job:vigil_test_in_flight:sum > 4
        labels: {severity: page}
        annotations: {summary: 'in flight: {{ $value }}'}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	leaf := exposition(t, leafMetrics)
	fed := startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ['%s']
alerting:
  alertmanagers: [{static_configs: [{targets: ['%s']}]}]
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
`, rulesFile, amAddr, hostOf(leaf)))
	expect(t, client(t, fed.url), `job:vigil_test_in_flight:sum`, `job:vigil_test_in_flight:sum{job="svc"}=5`)
	waitFor(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + amAddr + "/api/v2/alerts")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body strings.Builder
		_, _ = fmt.Fprint(&body, readAll(resp))
		if !strings.Contains(body.String(), `"alertname":"VigilTestTooBusy"`) || !strings.Contains(body.String(), `"summary":"in flight: 5"`) {
			return fmt.Errorf("alertmanager's alerts: %s", body.String())
		}
		return nil
	})
	alerts, err := client(t, fed.url).Alerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts.Alerts) != 1 || alerts.Alerts[0].State != promv1.AlertStateFiring {
		t.Errorf("alerts: got %+v, want VigilTestTooBusy firing", alerts.Alerts)
	}
}
