package profiler

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFederationJobs reads a federation configuration written for
// Prometheus, with the parts the profiler does not use, and profiles the
// targets of its service jobs.
func TestFederationJobs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "federation.yaml")
	err := os.WriteFile(path, []byte(`
global:
  scrape_interval: 5s
  evaluation_interval: 30s
  external_labels: {dc: eu1}
rule_files: [golden.rules.yml]
scrape_configs:
  - job_name: checkout
    metrics_path: /metrics
    honor_labels: false
    relabel_configs:
      - source_labels: [__address__]
        target_label: node
    static_configs:
      - targets: ["10.0.0.7:8080", "10.0.0.8:8080"]
        labels: {env: prod}
  - job_name: cart
    scrape_interval: 1m
    scheme: https
    file_sd_configs:
      - files: [/etc/vigil/cart/*.json]
  - job_name: leaf-prometheus
    metrics_path: /federate
    params: {"match[]": ['{job=~".+"}']}
    static_configs:
      - targets: ["prometheus:9090"]
remote_write:
  - url: http://mimir/api/v1/push
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := FederationJobs(path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].JobName != "checkout" || jobs[1].JobName != "cart" {
		t.Fatalf("jobs %v: want checkout and cart, not the /federate job", jobs)
	}
	co, cart := jobs[0], jobs[1]
	if co.ScrapeInterval != 10*time.Second || cart.ScrapeInterval != time.Minute {
		t.Errorf("intervals %s, %s: want the floor 10s over the federation's 5s, and cart's own 1m", co.ScrapeInterval, cart.ScrapeInterval)
	}
	if !reflect.DeepEqual(co.Profiles, ScrapedTypes) || co.CPUSeconds != 9 || co.Scheme != "http" || cart.Scheme != "https" {
		t.Errorf("checkout: profiles %v, cpu_seconds %d, scheme %s; cart scheme %s: want every type, a 9 s CPU window, the job's scheme",
			co.Profiles, co.CPUSeconds, co.Scheme, cart.Scheme)
	}
	if got := co.StaticConfigs; len(got) != 1 || len(got[0].Targets) != 2 || got[0].Labels["env"] != "prod" {
		t.Errorf("checkout targets %v: want both with env=prod", got)
	}
	if len(cart.FileSDConfigs) != 1 || cart.FileSDConfigs[0].RefreshInterval != defaultRefresh {
		t.Errorf("cart file_sd_configs %v: want the file with the default refresh", cart.FileSDConfigs)
	}

	// A job configured for the profiler itself wins over the federation's.
	own, err := ParseConfig([]byte("scrape_configs:\n  - job_name: cart\n    profiles: [heap]\n    static_configs:\n      - targets: [\"c:1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	merged := own.WithJobs(jobs)
	if len(merged.ScrapeConfigs) != 2 || merged.ScrapeConfigs[0].Profiles[0] != "heap" || merged.ScrapeConfigs[1].JobName != "checkout" {
		t.Errorf("merged jobs %v: want the profiler's cart, then the federation's checkout", merged.ScrapeConfigs)
	}
	if c := (*Config)(nil).WithJobs(jobs); len(c.ScrapeConfigs) != 2 {
		t.Errorf("no profiler configuration: %d jobs; want the federation's 2", len(c.ScrapeConfigs))
	}
}

func TestFederationJobsRefusesMistakes(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"scrape_configs:\n  - static_configs: []", "job_name missing"},
		{"scrape_configs:\n  - job_name: a\n    scheme: ftp", `job "a": scheme "ftp"`},
		{"scrape_configs: [", "federation.yaml: yaml"},
	} {
		path := filepath.Join(t.TempDir(), "federation.yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := FederationJobs(path, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v; want an error containing %q", c.yaml, err, c.want)
		}
	}
}

// TestSDKHeadersLabelProfiles: what a service on the Go SDK says of itself
// in its pprof responses' headers labels its profiles, unless the
// configuration or the discovery said otherwise.
func TestSDKHeadersLabelProfiles(t *testing.T) {
	h := http.Header{}
	h.Set("Vigil-Service", "checkout")
	h.Set("Vigil-Grade", "1")
	h.Set("Vigil-Env", "prod")
	h.Set("Vigil-Version", "v2.3.0")
	h.Set("Vigil-Host", strings.Repeat("x", 10_000)) // too long: ignored
	sc := &ScrapeConfig{JobName: "shop"}
	p := &Profiler{}
	ts := p.targets(sc, []StaticConfig{{Targets: []string{"a:1"}}, {Targets: []string{"b:1"}, Labels: map[string]string{"service": "cart", "env": "staging"}}})
	got := map[string]map[string]string{}
	for _, tg := range ts {
		got[tg.addr] = tg.labelsFor(h)
	}
	want := map[string]map[string]string{
		"a:1": {"job": "shop", "instance": "a:1", "service": "checkout", "grade": "1", "env": "prod", "version": "v2.3.0"},
		"b:1": {"job": "shop", "instance": "b:1", "service": "cart", "grade": "1", "env": "staging", "version": "v2.3.0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels %v; want %v", got, want)
	}
	if l := ts[keyOf(ts, "a:1")].labelsFor(http.Header{}); l["service"] != "shop" {
		t.Errorf("no headers: labels %v; want service = the job's name", l)
	}
}

func keyOf(ts map[string]*target, addr string) string {
	for k, t := range ts {
		if t.addr == addr {
			return k
		}
	}
	return ""
}
