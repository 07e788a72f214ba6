//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	runtimepprof "runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

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
	// The query APIs answer on the query port and on the profiler's.
	for _, addr := range []string{p.query, p.profiler} {
		cpu := downloadMerge(t, addr, `cpu{job="e2e"}`)
		if best, _ := profilertest.Top(cpu, "cpu"); !strings.HasSuffix(best, ".BurnCPU") {
			t.Errorf("%s: top function of the merged CPU profile: %q; want BurnCPU", addr, best)
		}
		heap := downloadMerge(t, addr, `heap{job="e2e"}`)
		if best, _ := profilertest.Top(heap, "inuse_space"); !strings.HasSuffix(best, ".HoldHeap") {
			t.Errorf("%s: top allocation site of the merged heap profile: %q; want HoldHeap", addr, best)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/querier.v1.QuerierService/ProfileTypes", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "cpu:cpu:nanoseconds:cpu:nanoseconds") {
			t.Errorf("%s: Pyroscope ProfileTypes: %s %s; want the CPU type", addr, resp.Status, body)
		}
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

// downloadMerge downloads the merged profile of query over the last hour
// from the pprof API at addr, checks that `go tool pprof -top` reads the
// file, and returns it parsed.
func downloadMerge(t *testing.T, addr, query string) *profile.Profile {
	t.Helper()
	u := "http://" + addr + "/vigil/api/v1/profiles/merge?" + url.Values{"query": {query},
		"start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "end": {fmt.Sprint(time.Now().Add(time.Minute).Unix())}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	prof, err := profile.ParseData(b)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	file := filepath.Join(t.TempDir(), "merged.pb.gz")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top %s: %v\n%s", query, err, out)
	}
	return prof
}

// TestProfilesOfFederationTargets profiles a service on the Go SDK that
// only the federation's configuration names (a Prometheus scrape job for
// its /metrics): its pprof endpoints, next to /metrics, are scraped with
// no profiler job of its own, filed under the job's name and the labels
// the SDK's headers give.
func TestProfilesOfFederationTargets(t *testing.T) {
	dir := t.TempDir()
	fed := filepath.Join(dir, "federation.yaml")
	own := filepath.Join(dir, "profiler.yaml")
	svcAddr := freePort(t)
	writeFile(t, fed, fmt.Sprintf("scrape_configs:\n  - job_name: shop\n    scrape_interval: 1s\n    static_configs:\n      - targets: [%q]\n", svcAddr))
	writeFile(t, own, "global:\n  scrape_interval: 2s\n")
	p := startAllInOne(t, filepath.Join(dir, "data"), "--profiler.config", own, "--profiler.federation-config", fed)
	svc := newSDKService(t, p, dsnOf(t, p), t.TempDir())
	svc.addr = svcAddr
	svc.proc.Args, svc.proc.Ready = []string{"--listen", svcAddr}, svcAddr
	svc.start()

	eventually(t, 60*time.Second, "goroutine profiles of the federation's target", func() (bool, string) {
		n := metric(t, p.profiler, "vigil_profiler_profiles_total", "source", "scrape", "type", "goroutine")
		return n >= 2, fmt.Sprintf("%v goroutine profiles scraped", n)
	})
	g := downloadMerge(t, p.query, `goroutine{job="shop",service="sdk-shop",grade="2",env="e2e"}`)
	if !stackHas(g, ".parkedWorker") {
		t.Errorf("goroutine profile of job shop: no stack through the service's parkedWorker:\n%s", g)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stackHas tells whether a sample of p has a function whose name ends in
// suffix on its stack.
func stackHas(p *profile.Profile, suffix string) bool {
	for _, s := range p.Sample {
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && strings.HasSuffix(l.Function.Name, suffix) {
					return true
				}
			}
		}
	}
	return false
}
