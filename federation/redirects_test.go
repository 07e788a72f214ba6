package federation

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A scrape target that redirects to another host is not followed, even
// with follow_redirects: true and in a scrape_config_files job: the
// target is down with the 3xx as its last error, counted in
// vigil_federation_scrape_targets_refused{reason="redirect"}, and the
// other host is never asked.
func TestScrapesDoNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, leafMetrics)
	}))
	t.Cleanup(elsewhere.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)

	jobs := filepath.Join(t.TempDir(), "jobs.yml")
	if err := os.WriteFile(jobs, []byte(fmt.Sprintf(`
scrape_configs:
  - job_name: from-file
    follow_redirects: true
    static_configs: [{targets: ['%s']}]
`, hostOf(redirect))), 0o600); err != nil {
		t.Fatal(err)
	}
	fed := startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_config_files: ['%s']
scrape_configs:
  - job_name: redirects
    follow_redirects: true
    static_configs: [{targets: ['%s']}]
`, jobs, hostOf(redirect)))
	c := client(t, fed.url)
	expect(t, c, `up{job="redirects"}`, fmt.Sprintf(`up{instance="%s", job="redirects"}=0`, hostOf(redirect)))
	expect(t, c, `up{job="from-file"}`, fmt.Sprintf(`up{instance="%s", job="from-file"}=0`, hostOf(redirect)))

	waitFor(t, 30*time.Second, func() error {
		ts, err := c.Targets(context.Background())
		if err != nil {
			return err
		}
		n := 0
		for _, tg := range ts.Active {
			if tg.Health != "down" || !strings.Contains(tg.LastError, "302") {
				return fmt.Errorf("target %s: health %s, last error %q; want down with the 302", tg.ScrapeURL, tg.Health, tg.LastError)
			}
			n++
		}
		if n != 2 {
			return fmt.Errorf("%d active targets, want 2", n)
		}
		return nil
	})
	if got, err := testutil.GatherAndCount(fed.reg, "vigil_federation_scrape_targets_refused"); err != nil || got != 1 {
		t.Fatalf("vigil_federation_scrape_targets_refused: %d series, %v", got, err)
	}
	want := "# HELP vigil_federation_scrape_targets_refused " + refusedTargetsHelp + "\n# TYPE vigil_federation_scrape_targets_refused gauge\nvigil_federation_scrape_targets_refused{reason=\"redirect\"} 2\n"
	if err := testutil.GatherAndCompare(fed.reg, strings.NewReader(want), "vigil_federation_scrape_targets_refused"); err != nil {
		t.Error(err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the host redirected to got %d scrapes; want none", n)
	}
}

func TestIsRedirect(t *testing.T) {
	f := func(msg string, want bool) {
		t.Helper()
		var err error
		if msg != "" {
			err = fmt.Errorf("%s", msg)
		}
		if got := isRedirect(err); got != want {
			t.Errorf("%q: got %v, want %v", msg, got, want)
		}
	}
	f("", false)
	f("server returned HTTP status 302 Found", true)
	f("server returned HTTP status 308 Permanent Redirect", true)
	f("server returned HTTP status 404 Not Found", false)
	f("context deadline exceeded", false)
}

// TestHTTPSDAnswerBounded: an http_sd endpoint whose answer is larger than
// the federation's bound is refused and counted, and its job gets no
// targets; a job whose endpoint answers within the bound gets its target.
func TestHTTPSDAnswerBounded(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, leafMetrics)
	}))
	t.Cleanup(target.Close)
	sd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		pad := ""
		if r.URL.Path == "/huge" {
			pad = strings.Repeat("x", 256<<10)
		}
		fmt.Fprintf(w, `[{"targets":[%q],"labels":{"pad":%q}}]`, hostOf(target), pad)
	}))
	t.Cleanup(sd.Close)
	fed := startFedWith(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: small
    http_sd_configs: [{url: '%s/small', refresh_interval: 1s}]
  - job_name: huge
    http_sd_configs: [{url: '%s/huge', refresh_interval: 1s}]
`, sd.URL, sd.URL), func(o *Options) { o.SDMaxBytes = 64 << 10 })
	c := client(t, fed.url)
	expect(t, c, `up{job="small"}`, fmt.Sprintf(`up{instance="%s", job="small"}=1`, hostOf(target)))
	waitFor(t, 30*time.Second, func() error {
		if n := testutil.ToFloat64(fed.sdLimit.refused); n < 2 {
			return fmt.Errorf("vigil_federation_sd_refused_total = %v; want the huge answer refused at each refresh", n)
		}
		return nil
	})
	expect(t, c, `up{job="huge"}`, "")
}
