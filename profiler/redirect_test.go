package profiler

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A target that redirects its scrape to another host is refused, counted
// with reason "redirect" and marked down, and the other host never sees a
// request; a target that redirects to another path of itself is scraped.
func TestScrapeRefusesRedirectsOffTheTarget(t *testing.T) {
	var offTargetHits atomic.Int32
	heap := runtimePprof(t, "heap")
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offTargetHits.Add(1)
		w.Write(heap)
	}))
	defer elsewhere.Close()
	offsite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
	}))
	defer offsite.Close()
	var onsite *httptest.Server
	onsite = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved/heap" {
			w.Write(heap)
			return
		}
		http.Redirect(w, r, onsite.URL+"/moved/heap", http.StatusMovedPermanently)
	}))
	defer onsite.Close()

	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
scrape_configs:
  - job_name: redirects
    scrape_interval: 1s
    profiles: [heap]
    static_configs:
      - targets: [%q, %q]
`, hostPort(offsite.URL), hostPort(onsite.URL))))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Config = cfg
	pa := startPath(t, o)

	pa.waitProfiles(t, selector(t, "heap", "instance", hostPort(onsite.URL)), 2, 20*time.Second)
	for deadline := time.Now().Add(20 * time.Second); testutil.ToFloat64(pa.p.m.scrapeErrors.WithLabelValues("redirects", hostPort(offsite.URL), "heap", "redirect")) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(`vigil_profiler_scrape_errors_total{reason="redirect"} of the redirecting target did not reach 2 in 20s`)
		}
	}
	if v := testutil.ToFloat64(pa.p.m.up.WithLabelValues("redirects", hostPort(offsite.URL), "heap")); v != 0 {
		t.Errorf("vigil_profiler_target_up of the redirecting target = %v; want 0", v)
	}
	if n := offTargetHits.Load(); n != 0 {
		t.Errorf("the host redirected to got %d requests; want none", n)
	}
	ms, err := pa.store.Profiles(context.Background(), selector(t, "", "instance", hostPort(offsite.URL)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 0 {
		t.Errorf("%d profiles stored from the redirecting target; want none", len(ms))
	}
	if v := testutil.ToFloat64(pa.p.m.up.WithLabelValues("redirects", hostPort(onsite.URL), "heap")); v != 1 {
		t.Errorf("vigil_profiler_target_up of the target redirecting to itself = %v; want 1", v)
	}
}

func TestSameTarget(t *testing.T) {
	f := func(from, to string, ok bool) {
		t.Helper()
		first := httptest.NewRequest("GET", from, nil)
		next := httptest.NewRequest("GET", to, nil)
		if err := sameTarget(next, []*http.Request{first}); (err == nil) != ok {
			t.Errorf("%s -> %s: got %v, want allowed=%v", from, to, err, ok)
		}
	}
	f("http://a:6060/debug/pprof/heap", "http://a:6060/debug/pprof/heap/", true)
	f("http://a:6060/x", "http://a:6061/x", false)
	f("http://a:6060/x", "http://b:6060/x", false)
	f("https://a:6060/x", "http://a:6060/x", false)
	f("http://a:6060/x", "http://169.254.169.254/latest/meta-data/", false)
}
