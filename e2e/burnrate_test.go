//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
)

// sdkTarget serves /metrics the way a service instrumented with Vigil's
// SDK does: vigil_http_requests_total{service,grade,route,method,code},
// here growing at rps requests a second of which a share errRatio fail
// with 500. The counters are the elapsed time times the rates, so every
// scrape sees exactly that ratio whatever its timing.
func sdkTarget(t *testing.T, service, grade string, rps, errRatio float64) string {
	t.Helper()
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := rps * time.Since(start).Seconds()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP vigil_http_requests_total HTTP requests served.\n# TYPE vigil_http_requests_total counter\n")
		for _, c := range []struct {
			code string
			n    float64
		}{{"200", n * (1 - errRatio)}, {"500", n * errRatio}} {
			fmt.Fprintf(w, "vigil_http_requests_total{service=%q,grade=%q,route=\"/api\",method=\"GET\",code=%q} %g\n", service, grade, c.code, c.n)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// amAlert is one alert of Alertmanager's GET /api/v2/alerts.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func alertmanagerAlerts(t *testing.T, addr string) ([]amAlert, error) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: %s %s", resp.Status, b)
	}
	var alerts []amAlert
	if err := json.Unmarshal(b, &alerts); err != nil {
		return nil, fmt.Errorf("GET /api/v2/alerts: %v: %s", err, b)
	}
	return alerts, nil
}

// startAlertmanager runs Debian's Alertmanager on a free port until the
// test ends; it skips the test when Alertmanager is not installed, or
// fails it under VIGIL_REQUIRE_SERVICES=1.
func startAlertmanager(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatal("prometheus-alertmanager is required (VIGIL_REQUIRE_SERVICES=1) but not installed: run deploy/local/deps.sh")
		}
		t.Skip("prometheus-alertmanager is not installed (deploy/local/deps.sh installs it)")
	}
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route: {receiver: none}\nreceivers: [{name: none}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	var out bytes.Buffer
	am := &childproc.Process{Binary: bin, Ready: addr, ReadyPath: "/-/ready", Stdout: &out, Stderr: &out,
		Args: []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "alertmanager"),
			"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=warn"}}
	if err := am.Start(); err != nil {
		t.Fatalf("alertmanager: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		_ = am.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	return addr
}

// TestBurnRateAlertReachesAlertmanager runs all-in-one with the generated
// golden rules over two services that both fail 20 % of their requests:
// checkout, grade 1, and newsletter, grade 4. The burn-rate alert is the
// SRE workbook's page at 14.4× the error budget over a long and a short
// window, shortened to 30s and 10s (rates over 10s, scraped and evaluated
// every second: at least ten samples in each rate, well inside
// Prometheus' 5m lookback). Grade 1's objective is 99.9 %: its budget is
// 0.1 %, the threshold 1.44 %, and 20 % burns it 200× — it pages. Grade
// 4's objective is 95 %: its budget is 5 %, the threshold 72 %, and 20 %
// burns it only 4× — no page. The alert must reach the real Alertmanager
// labelled with checkout's service, grade and severity, and newsletter's
// must not, although its recorded error ratio is the same 0.2.
func TestBurnRateAlertReachesAlertmanager(t *testing.T) {
	dir := t.TempDir()
	amAddr := startAlertmanager(t, dir)
	checkout := sdkTarget(t, "checkout", "1", 50, 0.2)
	newsletter := sdkTarget(t, "newsletter", "4", 50, 0.2)

	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
alerting:
  alertmanagers: [{static_configs: [{targets: ['%s']}]}]
scrape_configs:
  - job_name: services
    static_configs: [{targets: ['%s', '%s'], labels: {dc: eu1}}]
`, amAddr, checkout, newsletter)), 0o644); err != nil {
		t.Fatal(err)
	}
	conventions := filepath.Join(dir, "conventions.yml")
	if err := os.WriteFile(conventions, []byte(`
rate_window: 10s
interval: 1s
conventions: [{preset: vigil-http}]
process: {disabled: true}
slo:
  objectives: {"1": 99.9, "4": 95}
  alerts: [{severity: page, long_window: 30s, short_window: 10s, factor: 14.4}]
  for: 2s
  interval: 1s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--federation.config", cfg, "--federation.golden-conventions", conventions)

	const alertname = "VigilHttpErrorBudgetBurn"
	var page amAlert
	eventually(t, 40*time.Second, "checkout's burn-rate alert in Alertmanager", func() (bool, string) {
		alerts, err := alertmanagerAlerts(t, amAddr)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["alertname"] != alertname {
				continue
			}
			if a.Labels["service"] == "newsletter" {
				t.Fatalf("newsletter (grade 4, 20 %% errors, threshold 72 %%) raised %+v", a)
			}
			if a.Labels["service"] == "checkout" {
				page = a
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", alerts)
	})
	for k, want := range map[string]string{"service": "checkout", "grade": "1", "severity": "page", "objective": "99.9", "signal": "vigil_http"} {
		if page.Labels[k] != want {
			t.Errorf("alert label %s: got %q, want %q (labels %v)", k, page.Labels[k], want, page.Labels)
		}
	}
	if want := "checkout (grade 1) is burning its error budget too fast"; page.Annotations["summary"] != want {
		t.Errorf("summary: got %q, want %q", page.Annotations["summary"], want)
	}
	if page.Status.State != "active" {
		t.Errorf("state in Alertmanager: got %q, want active", page.Status.State)
	}

	// The recorded error ratios, read on the query port: 0.2 for both
	// services over both windows — newsletter's silence is its objective,
	// not missing data.
	now := time.Now()
	for _, q := range []string{
		`service_grade:vigil_http_errors:ratio_rate10s{service="checkout",grade="1"}`,
		`service_grade:vigil_http_errors:ratio_rate30s{service="checkout",grade="1"}`,
		`service_grade_dc:vigil_http_errors:ratio_rate10s{service="checkout",grade="1",dc="eu1"}`,
		`service_grade:vigil_http_errors:ratio_rate10s{service="newsletter",grade="4"}`,
		`service_grade:vigil_http_errors:ratio_rate30s{service="newsletter",grade="4"}`,
	} {
		v := promQuery(t, "http://"+p.query, q, now)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.Abs(f-0.2) > 0.001 {
			t.Errorf("%s: got %q, want 0.2", q, v)
		}
	}

	// Newsletter was evaluated against the same data at every step: it is
	// neither pending nor firing in the federation, and stays out of
	// Alertmanager for longer than `for` plus a few evaluations more.
	if v := promQuery(t, "http://"+p.query, `count(ALERTS{alertname="`+alertname+`",service="newsletter"})`, now); v != "" {
		t.Errorf("ALERTS of newsletter: got %q, want none", v)
	}
	until := time.Now().Add(5 * time.Second)
	for time.Now().Before(until) {
		alerts, err := alertmanagerAlerts(t, amAddr)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Labels["service"] == "newsletter" {
				t.Fatalf("newsletter (grade 4, 20 %% errors, threshold 72 %%) raised %+v", a)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}
