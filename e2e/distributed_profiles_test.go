//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/profilestore"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/profiler/profilertest"
)

// TestDistributedProfiles runs vigil profiler scraping a real Go service
// and taking pushes, through Kafka (vigil.profiles), to a vigil ingester
// that stores them in its embedded profile store (with Elasticsearch:
// TestDistributedProfilesElasticsearch). The ingester is killed with SIGKILL
// mid-stream and started again: every profile the profiler published is
// stored exactly once.
func TestDistributedProfiles(t *testing.T) {
	kafkaAddr, _ := services(t)
	run := fmt.Sprintf("e2eprof%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	target, stopTarget := profilertest.StartService(t)
	prof, profAddr, kafkaArgs := startProfiler(t, kafkaAddr, run, dir, target)
	ingAddr := freePort(t)
	ingDir := filepath.Join(dir, "i")
	ing := startDaemon(t, ingAddr, append([]string{"ingester", "--data-dir", ingDir, "--log.level", "warn", "--ingester.listen", ingAddr}, kafkaArgs...)...)

	push := func(i int) { pushGoroutines(t, profAddr, run, i) }
	for i := 0; i < 10; i++ {
		push(i)
	}
	eventually(t, 90*time.Second, "profiles stored by the first ingester", func() (bool, string) {
		n := metric(t, ingAddr, "vigil_profilestore_profiles")
		return n >= 12, fmt.Sprintf("%v stored", n)
	})
	ing.kill()
	for i := 10; i < 20; i++ {
		push(i)
	}
	time.Sleep(3 * time.Second) // more scrapes while the ingester is down
	ing.start()
	// Stop the scrapes (the target goes away; a CPU scrape in flight ends
	// within its window) and count what the profiler published.
	stopTarget()
	time.Sleep(3 * time.Second)
	published := metric(t, profAddr, "vigil_profiler_profiles_total")
	eventually(t, 90*time.Second, "every published profile stored", func() (bool, string) {
		n := metric(t, ingAddr, "vigil_profilestore_profiles")
		return n == published, fmt.Sprintf("%v stored of %v published", n, published)
	})
	if err := ing.vigil.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := prof.vigil.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := profilestore.Open(profilestore.Options{Dir: filepath.Join(ingDir, "profiles")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, err := st.Profiles(context.Background(), storage.ProfileSelector{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if float64(len(all)) != published {
		t.Errorf("%d profiles in the store after restart; want the %v published", len(all), published)
	}
	pushed, err := st.Profiles(context.Background(), profilertest.Selector(t, "goroutine", "service", run+"-push"), 0)
	if err != nil || len(pushed) != 20 {
		t.Errorf("%d pushed profiles stored, %v; want 20", len(pushed), err)
	}
	merged, err := st.Merge(context.Background(), storage.MergeQuery{ProfileSelector: profilertest.Selector(t, "cpu", "job", run)})
	if err != nil {
		t.Fatal(err)
	}
	if best, _ := profilertest.Top(merged, "cpu"); !strings.HasSuffix(best, ".BurnCPU") {
		t.Errorf("top function of the merged CPU profile: %q; want BurnCPU", best)
	}
}

// startProfiler starts vigil profiler scraping target with a Kafka topic
// of the run's own, and returns it, its address and the Kafka flags the
// run's other daemons take.
func startProfiler(t *testing.T, kafkaAddr, run, dir, target string) (*daemon, string, []string) {
	cfg := scrapeConfig(t, dir, run, target, "cpu, heap, goroutine", "{}")
	kafkaArgs := append([]string{"--kafka.brokers", kafkaAddr, "--kafka.topic", "vigil.logs." + run, "--kafka.spans-topic", "vigil.spans." + run,
		"--kafka.group", "g-" + run}, runDumpsTopics(run)...)
	addr := freePort(t)
	prof := startDaemon(t, addr, append([]string{"profiler", "--data-dir", filepath.Join(dir, "p"), "--log.level", "warn",
		"--profiler.listen", addr, "--profiler.config", cfg}, kafkaArgs...)...)
	return prof, addr, kafkaArgs
}

// pushGoroutines pushes this process's goroutine profile to the profiler
// at profAddr as service <run>-push, i seconds in the past (so that each
// push is a profile of its own), and fails unless it is acknowledged.
func pushGoroutines(t *testing.T, profAddr, run string, i int) {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 0); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/ingest?name=%s.goroutines&from=%d", profAddr, run+"-push", time.Now().Unix()-int64(i))
	resp, err := http.Post(url, "application/octet-stream", &b)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /ingest: %s", resp.Status)
	}
}
