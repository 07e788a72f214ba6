//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	runtimepprof "runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/profilestore"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/profiler/profilertest"
)

// TestProfilesAllInOne runs vigil all-in-one scraping the pprof endpoints
// of a real Go service (this test process, with net/http/pprof) and taking
// a pushed profile on POST /ingest; after a restart, the embedded profile
// store holds them, and the merged CPU profile's top function is the one
// the service burns CPU in.
func TestProfilesAllInOne(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); profilertest.BurnCPU(stop) }()
	defer func() { close(stop); wg.Wait() }()
	target := httptest.NewServer(profilertest.PprofMux())
	defer target.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "profiler.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
scrape_configs:
  - job_name: e2e
    scrape_interval: 2s
    cpu_seconds: 1
    profiles: [cpu, heap]
    static_configs:
      - targets: [%q]
        labels: {env: test}
`, strings.TrimPrefix(target.URL, "http://"))), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	p := startAllInOne(t, dataDir, "--profiler.config", cfg)

	var heap bytes.Buffer
	runtime.GC()
	if err := runtimepprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+p.profiler+"/ingest?name=pushed.app.alloc_objects%7Benv%3De2e%7D&from="+fmt.Sprint(time.Now().Unix()),
		"application/octet-stream", &heap)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /ingest: %s", resp.Status)
	}
	eventually(t, 60*time.Second, "scraped CPU profiles stored", func() (bool, string) {
		n := metric(t, p.query, "vigil_profilestore_profiles")
		cpu := metric(t, p.profiler, "vigil_profiler_profiles_total", "source", "scrape", "type", "cpu")
		return n >= 5 && cpu >= 3, fmt.Sprintf("%v profiles stored, %v CPU profiles scraped", n, cpu)
	})
	if v := metric(t, p.profiler, "vigil_profiler_target_up", "job", "e2e", "type", "cpu"); v != 1 {
		t.Errorf("vigil_profiler_target_up{job=e2e,type=cpu} = %v; want 1", v)
	}
	p.stop()

	// Everything acknowledged is in the store the process left behind.
	st, err := profilestore.Open(profilestore.Options{Dir: filepath.Join(dataDir, "profiles")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eq := func(name, value string) *model.LabelMatcher {
		m, err := model.NewLabelMatcher(name, model.MatchEqual, value)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sel := storage.ProfileSelector{Type: "cpu", Matchers: []*model.LabelMatcher{eq("job", "e2e"), eq("env", "test")}}
	merged, err := st.Merge(context.Background(), storage.MergeQuery{ProfileSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if best, _ := profilertest.Top(merged, "cpu"); !strings.HasSuffix(best, ".BurnCPU") {
		t.Errorf("top function of the merged CPU profile: %q; want BurnCPU", best)
	}
	pushed, err := st.Profiles(context.Background(), storage.ProfileSelector{Type: "heap", Matchers: []*model.LabelMatcher{eq("service", "pushed.app"), eq("env", "e2e")}}, 0)
	if err != nil || len(pushed) != 1 {
		t.Errorf("pushed heap profile: %d stored, %v; want 1", len(pushed), err)
	}
}
