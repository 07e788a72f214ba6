package profiler

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vigilhq/vigil/profiler/profilertest"
)

func TestDiscoveryFromFilesAndHTTP(t *testing.T) {
	fromFile, fromHTTP := pprofServer(t), pprofServer(t)
	dir := t.TempDir()
	groups, _ := json.Marshal([]StaticConfig{{Targets: []string{hostPort(fromFile.URL)}, Labels: map[string]string{"service": "cart", "env": "staging"}}})
	if err := os.WriteFile(filepath.Join(dir, "targets.json"), groups, 0o644); err != nil {
		t.Fatal(err)
	}
	sd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `[{"targets":[%q],"labels":{"grade":"2","__meta_ignored":"x"}}]`, hostPort(fromHTTP.URL))
	}))
	defer sd.Close()
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: discovered
    profiles: [goroutine]
    file_sd_configs:
      - files: [%q]
        refresh_interval: 1s
    http_sd_configs:
      - url: %s
`, filepath.Join(dir, "*.json"), sd.URL)))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Config = cfg
	pa := startPath(t, o)
	pa.waitProfiles(t, selector(t, "goroutine", "instance", hostPort(fromFile.URL), "service", "cart", "env", "staging", "job", "discovered"), 1, 20*time.Second)
	ms := pa.waitProfiles(t, selector(t, "goroutine", "instance", hostPort(fromHTTP.URL), "service", "discovered", "grade", "2"), 1, 20*time.Second)
	if ms[0].Labels.Get("__meta_ignored") != "" {
		t.Errorf("labels %v: a __ label of the discovery is kept", ms[0].Labels)
	}
	if v := testutil.ToFloat64(pa.p.m.targets.WithLabelValues("discovered")); v != 2 {
		t.Errorf("vigil_profiler_targets{job=discovered} = %v; want 2", v)
	}
}

func TestParseConfigRefusesMistakes(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"scrape_configs:\n  - static_configs: []", "job_name missing"},
		{"scrape_configs:\n  - job_name: a\n  - job_name: a", "appears twice"},
		{"scrape_configs:\n  - job_name: a\n    profiles: [wall]", `"wall" is not a profile type that can be scraped`},
		{"scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    cpu_seconds: 10", "shorter than scrape_interval"},
		{"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [http://x:1]", "want host:port"},
		{"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [x]", "want host:port"},
		{"scrape_configs:\n  - job_name: a\n    body_size_limit: lots", "body_size_limit"},
		{"scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: file:///etc", "want an http or https URL"},
		{"scrape_configs:\n  - job_name: a\n    scheme: ftp", "want http or https"},
		{"scrape_configs:\n  - job_name: a\n    unknown_field: 1", "unknown_field"},
	} {
		_, err := ParseConfig([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%q) = %v; want an error containing %q", c.yaml, err, c.want)
		}
	}
	cfg, err := ParseConfig([]byte("scrape_configs:\n  - job_name: a\n    body_size_limit: 2MiB\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.ScrapeConfigs[0]
	if sc.BodySizeLimit != 2<<20 || sc.ScrapeInterval != DefaultScrapeInterval || sc.CPUSeconds != DefaultCPUSeconds || len(sc.Profiles) != 6 || sc.Scheme != "http" {
		t.Errorf("defaults: %+v", sc)
	}
}

// TestParcaProfilingConfig reads Parca's profiling_config: its default
// endpoints, one turned off, one of its own with a window, a path
// overridden, and a path_prefix; then scrapes a service mounted under
// that prefix with it.
func TestParcaProfilingConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
scrape_configs:
  - job_name: parca
    scrape_interval: 3s
    static_configs:
      - targets: ["svc:8080"]
    profiling_config:
      path_prefix: /svc
      pprof_config:
        block: {enabled: false}
        mutex: {enabled: false}
        fgprof: {enabled: true, path: /debug/fgprof, delta: true}
        memory:
          path: /debug/pprof/allocs
          keep_sample_type: [{type: alloc_space, unit: bytes}]
`))
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.ScrapeConfigs[0]
	tg := &target{sc: sc, addr: "svc:8080"}
	want := map[string]string{
		"fgprof":    "http://svc:8080/svc/debug/fgprof?seconds=2",
		"goroutine": "http://svc:8080/svc/debug/pprof/goroutine",
		"heap":      "http://svc:8080/svc/debug/pprof/allocs",
		"cpu":       "http://svc:8080/svc/debug/pprof/profile?seconds=2",
	}
	if got := strings.Join(sc.Profiles, ","); got != "fgprof,goroutine,heap,cpu" {
		t.Errorf("types %s; want fgprof,goroutine,heap,cpu", got)
	}
	for typ, u := range want {
		if got := scrapeURL(tg, typ); got != u {
			t.Errorf("%s: %s; want %s", typ, got, u)
		}
	}
	for _, c := range []struct{ yaml, want string }{
		{"scrape_configs:\n  - job_name: a\n    profiles: [heap]\n    profiling_config: {}", "give one of them"},
		{"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n        fgprof: {enabled: true}", "pprof_config.fgprof: path"},
		{"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n        9x: {path: /x}", "not a profile type name"},
	} {
		if _, err := ParseConfig([]byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%q) = %v; want an error containing %q", c.yaml, err, c.want)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/svc/", http.StripPrefix("/svc", profilertest.PprofMux()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg, err = ParseConfig([]byte(fmt.Sprintf(`
scrape_configs:
  - job_name: parca
    scrape_interval: 1s
    static_configs:
      - targets: [%q]
    profiling_config:
      path_prefix: /svc
      pprof_config:
        process_cpu: {enabled: false}
        block: {enabled: false}
        mutex: {enabled: false}
        goroutine: {enabled: false}
        memory: {path: /debug/pprof/allocs}
`, hostPort(srv.URL))))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Config = cfg
	pa := startPath(t, o)
	ms := pa.waitProfiles(t, selector(t, "heap", "job", "parca"), 1, 20*time.Second)
	if len(ms[0].SampleTypes) != 4 {
		t.Errorf("sample types %v; want the allocs profile's four", ms[0].SampleTypes)
	}
}
