//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/profiler/profilertest"
)

// TestDistributedProfilesElasticsearch runs the distributed mode with
// Elasticsearch as the profile store: vigil profiler scrapes a real Go
// service and takes pushes, through Kafka, to a vigil ingester storing
// into Elasticsearch, read back through vigil query's pprof API. The
// ingester is killed with SIGKILL mid-stream and started again, and so is
// the profiler, in the middle of a scrape: every acknowledged push is
// stored exactly once, every stored profile opens whole in pprof, and the
// store holds what the profiler published.
func TestDistributedProfilesElasticsearch(t *testing.T) {
	kafkaAddr, esURL := services(t)
	run := fmt.Sprintf("e2eesprof%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	target, stopTarget := profilertest.StartService(t)
	esArgs := []string{"--es.urls", esURL, "--es.index-prefix", "vigil-" + run + "-", "--es.jaeger.index-prefix", run,
		"--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run, "--es.replicas", "0"}
	t.Cleanup(func() {
		for _, p := range []string{run + "-*", "vigil-" + run + "-*", run + "-jaeger-*"} {
			if req, err := http.NewRequest(http.MethodDelete, esURL+"/"+p, nil); err == nil {
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	prof, profAddr, kafkaArgs := startProfiler(t, kafkaAddr, run, dir, target)
	ingAddr, queryAddr := freePort(t), freePort(t)
	ing := startDaemon(t, ingAddr, append(append([]string{"ingester", "--data-dir", filepath.Join(dir, "i"), "--log.level", "warn",
		"--ingester.listen", ingAddr}, kafkaArgs...), esArgs...)...)
	startDaemon(t, queryAddr, append([]string{"query", "--log.level", "warn", "--query.listen", queryAddr}, esArgs...)...)
	index := run + "-vigil-profiles-*"

	push := func(i int) { pushGoroutines(t, profAddr, run, i) }
	for i := 0; i < 10; i++ {
		push(i)
	}
	eventually(t, 90*time.Second, "profiles stored by the first ingester", func() (bool, string) {
		n := esCount(t, esURL, index)
		return n >= 12, fmt.Sprintf("%d stored", n)
	})
	ing.kill()
	for i := 10; i < 20; i++ {
		push(i)
	}
	time.Sleep(3 * time.Second) // more scrapes while the ingester is down
	ing.start()

	// The profiler killed in the middle of a scrape: a CPU scrape lasts
	// 1 s of every 2 s. What it published before is in its spool or in
	// Kafka; what it was scraping is lost whole.
	eventually(t, 30*time.Second, "a CPU scrape under way", func() (bool, string) {
		n := metric(t, profAddr, "vigil_profiler_profiles_total", "type", "cpu")
		return n >= 2, fmt.Sprintf("%v CPU profiles published", n)
	})
	time.Sleep(time.Duration(500+rand.IntN(1000)) * time.Millisecond)
	before := metric(t, profAddr, "vigil_profiler_profiles_total")
	prof.kill()
	prof.start()
	for i := 20; i < 25; i++ {
		push(i)
	}
	time.Sleep(3 * time.Second) // scrapes by the restarted profiler
	stopTarget()
	time.Sleep(3 * time.Second) // a CPU scrape in flight ends within its window
	after := metric(t, profAddr, "vigil_profiler_profiles_total")
	published := int(before + after)

	var stored int
	eventually(t, 90*time.Second, "every published profile stored", func() (bool, string) {
		stored = esCount(t, esURL, index)
		// A scrape may have ended between reading the counter and the
		// kill: at most one profile of each of the three types.
		return stored >= published && stored <= published+3, fmt.Sprintf("%d stored of %d published (+ at most 3)", stored, published)
	})

	t.Logf("%d profiles published (%v before the profiler's kill, %v after), %d stored", published, before, after, stored)
	// Through vigil query: the listing holds each stored profile once,
	// and each opens whole in pprof.
	list := listProfiles(t, queryAddr, "{}")
	ids := map[string]bool{}
	for _, p := range list {
		if ids[p.ID] {
			t.Errorf("profile %s listed twice", p.ID)
		}
		ids[p.ID] = true
	}
	if len(list) != stored {
		t.Errorf("the query API lists %d profiles; Elasticsearch holds %d", len(list), stored)
	}
	for id := range ids {
		if _, err := fetchPprof(queryAddr, "profile/"+id, nil); err != nil {
			t.Errorf("profile %s: %v", id, err)
		}
	}
	if pushed := listProfiles(t, queryAddr, fmt.Sprintf(`goroutine{service=%q}`, run+"-push")); len(pushed) != 25 {
		t.Errorf("%d pushed profiles stored; want the 25 acknowledged, each once", len(pushed))
	}
	merged, err := fetchPprof(queryAddr, "merge", url.Values{"query": {fmt.Sprintf(`cpu{job=%q}`, run)}})
	if err != nil {
		t.Fatal(err)
	}
	if best, _ := profilertest.Top(merged, "cpu"); !strings.HasSuffix(best, ".BurnCPU") {
		t.Errorf("top function of the merged CPU profile: %q; want BurnCPU", best)
	}
	if err := ing.vigil.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := prof.vigil.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

type listedProfile struct {
	ID string `json:"id"`
}

// listProfiles lists the profiles of a selector over the last hour
// through the pprof API of vigil query.
func listProfiles(t *testing.T, queryAddr, query string) []listedProfile {
	t.Helper()
	v := url.Values{"query": {query}, "start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "end": {fmt.Sprint(time.Now().Add(time.Minute).Unix())}, "limit": {"10000"}}
	resp, err := http.Get("http://" + queryAddr + "/vigil/api/v1/profiles/list?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list %s: %s: %s", query, resp.Status, body)
	}
	var out struct {
		Data []listedProfile `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("list %s: %v: %s", query, err, body)
	}
	return out.Data
}

// fetchPprof gets a pprof download of the query API and parses it as
// pprof does.
func fetchPprof(queryAddr, path string, v url.Values) (*profile.Profile, error) {
	if v == nil {
		v = url.Values{}
	}
	v.Set("start", fmt.Sprint(time.Now().Add(-time.Hour).Unix()))
	v.Set("end", fmt.Sprint(time.Now().Add(time.Minute).Unix()))
	resp, err := http.Get("http://" + queryAddr + "/vigil/api/v1/profiles/" + path + "?" + v.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, body)
	}
	return profile.Parse(bytes.NewReader(body))
}
