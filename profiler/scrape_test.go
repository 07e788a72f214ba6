package profiler

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/profiler/profilertest"
)

// pprofServer is a real Go service: net/http/pprof's handlers, as a
// service imports them, served by this test process.
func pprofServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(profilertest.PprofMux())
	t.Cleanup(srv.Close)
	return srv
}

// retained keeps what allocateKnownSite allocated, so that the heap
// profile's in-use space shows it.
var retained [][]byte

// allocateKnownSite allocates 64 MiB in 1 MiB blocks and keeps them.
//
//go:noinline
func allocateKnownSite() {
	for i := 0; i < 64; i++ {
		retained = append(retained, make([]byte, 1<<20))
	}
}

func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }

func TestScrapeCPUAndHeapOfARealService(t *testing.T) {
	allocateKnownSite()
	defer func() { retained = nil }()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); profilertest.BurnCPU(stop) }()
	defer func() { close(stop); wg.Wait() }()

	target := pprofServer(t)
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
scrape_configs:
  - job_name: checkout
    scrape_interval: 2s
    cpu_seconds: 1
    profiles: [cpu, heap]
    static_configs:
      - targets: [%q]
        labels: {env: test, grade: "1"}
`, hostPort(target.URL))))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Config = cfg
	pa := startPath(t, o)

	cpuSel := selector(t, "cpu", "job", "checkout", "service", "checkout", "env", "test", "grade", "1", "instance", hostPort(target.URL))
	pa.waitProfiles(t, cpuSel, 3, 30*time.Second)
	merged, err := pa.store.Merge(context.Background(), storage.MergeQuery{ProfileSelector: cpuSel})
	if err != nil {
		t.Fatal(err)
	}
	if got, v := profilertest.Top(merged, "cpu"); !strings.HasSuffix(got, ".BurnCPU") {
		t.Errorf("top function of the merged CPU profile: %q (%d ns); want BurnCPU", got, v)
	}

	heapSel := selector(t, "heap", "job", "checkout")
	pa.waitProfiles(t, heapSel, 1, 10*time.Second)
	heap, err := pa.store.Merge(context.Background(), storage.MergeQuery{ProfileSelector: heapSel})
	if err != nil {
		t.Fatal(err)
	}
	if v := stackValue(heap, "inuse_space", "allocateKnownSite"); v < 32<<20 {
		t.Errorf("heap profile: %d bytes in use allocated under allocateKnownSite; want about 64 MiB", v)
	}
	if v := testutil.ToFloat64(pa.p.m.up.WithLabelValues("checkout", hostPort(target.URL), "cpu")); v != 1 {
		t.Errorf("vigil_profiler_target_up{job=checkout,type=cpu} = %v; want 1", v)
	}
}

func TestBadTargetsAreBoundedAndReported(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>this is not pprof</html>")
	}))
	defer garbage.Close()
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		block := make([]byte, 1<<20)
		for i := 0; i < 50; i++ { // 50 MB
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	}))
	defer huge.Close()
	good := pprofServer(t)

	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
scrape_configs:
  - job_name: mixed
    scrape_interval: 1500ms
    scrape_timeout: 1s
    profiles: [heap, goroutine]
    body_size_limit: 1MiB
    static_configs:
      - targets: [%q, %q, %q, %q]
`, hostPort(hang.URL), hostPort(garbage.URL), hostPort(huge.URL), hostPort(good.URL))))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Config = cfg
	o.Concurrency = 2
	pa := startPath(t, o)

	goodSel := selector(t, "goroutine", "instance", hostPort(good.URL))
	pa.waitProfiles(t, goodSel, 3, 30*time.Second)
	for _, c := range []struct{ url, reason string }{
		{hang.URL, "timeout"}, {garbage.URL, "invalid"}, {huge.URL, "too_large"},
	} {
		if v := testutil.ToFloat64(pa.p.m.scrapeErrors.WithLabelValues("mixed", hostPort(c.url), "heap", c.reason)); v < 1 {
			t.Errorf("vigil_profiler_scrape_errors_total{instance=%s,type=heap,reason=%s} = %v; want at least 1", hostPort(c.url), c.reason, v)
		}
		if v := testutil.ToFloat64(pa.p.m.up.WithLabelValues("mixed", hostPort(c.url), "heap")); v != 0 {
			t.Errorf("vigil_profiler_target_up{instance=%s,type=heap} = %v; want 0", hostPort(c.url), v)
		}
		ms, err := pa.store.Profiles(context.Background(), selector(t, "", "instance", hostPort(c.url)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 0 {
			t.Errorf("%d profiles stored from the %s target; want none", len(ms), c.reason)
		}
	}
	if v := testutil.ToFloat64(pa.p.m.up.WithLabelValues("mixed", hostPort(good.URL), "heap")); v != 1 {
		t.Errorf("the good target's vigil_profiler_target_up = %v; want 1", v)
	}
}

// TestScrapesStayUnderTheConcurrencyBound scrapes four slow targets with a
// bound of one scrape in flight: the targets never see two at once, and
// each is scraped all the same.
func TestScrapesStayUnderTheConcurrencyBound(t *testing.T) {
	var inFlight, most atomic.Int32
	heap := runtimePprof(t, "heap")
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
		w.Write(heap)
	})
	a, b := httptest.NewServer(slow), httptest.NewServer(slow)
	defer a.Close()
	defer b.Close()
	// Each server under two names: four targets.
	targets := []string{hostPort(a.URL), strings.Replace(hostPort(a.URL), "127.0.0.1", "localhost", 1),
		hostPort(b.URL), strings.Replace(hostPort(b.URL), "127.0.0.1", "localhost", 1)}
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
scrape_configs:
  - job_name: slow
    scrape_interval: 1s
    profiles: [heap]
    static_configs:
      - targets: [%q, %q, %q, %q]
`, targets[0], targets[1], targets[2], targets[3])))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Config, o.Concurrency = cfg, 1
	pa := startPath(t, o)
	for _, tg := range targets {
		pa.waitProfiles(t, selector(t, "heap", "instance", tg), 2, 20*time.Second)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d scrapes in flight at once; want at most 1 (--profiler.concurrency)", m)
	}
}
