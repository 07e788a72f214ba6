//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	runtimepprof "runtime/pprof"
	"strings"
	"testing"
	"time"

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
	target, _ := profilertest.StartService(t)
	dir := t.TempDir()
	cfg := scrapeConfig(t, dir, "e2e", target, "cpu, heap", "{env: test}")
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
	merged, err := st.Merge(context.Background(), storage.MergeQuery{ProfileSelector: profilertest.Selector(t, "cpu", "job", "e2e", "env", "test")})
	if err != nil {
		t.Fatal(err)
	}
	if best, _ := profilertest.Top(merged, "cpu"); !strings.HasSuffix(best, ".BurnCPU") {
		t.Errorf("top function of the merged CPU profile: %q; want BurnCPU", best)
	}
	pushed, err := st.Profiles(context.Background(), profilertest.Selector(t, "heap", "service", "pushed.app", "env", "e2e"), 0)
	if err != nil || len(pushed) != 1 {
		t.Errorf("pushed heap profile: %d stored, %v; want 1", len(pushed), err)
	}
}

// scrapeConfig writes a --profiler.config file under dir with one job
// scraping target's profile types every 2 s (CPU over 1 s), with the
// target labels given as a YAML map, and returns its path.
func scrapeConfig(t testing.TB, dir, job, target, types, labels string) string {
	t.Helper()
	cfg := filepath.Join(dir, "profiler.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
scrape_configs:
  - job_name: %s
    scrape_interval: 2s
    cpu_seconds: 1
    profiles: [%s]
    static_configs:
      - targets: [%q]
        labels: %s
`, job, types, target, labels)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
