package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"
)

// Two tenants behind the query port's real auth guard and query limiter:
// tenant A's storm fills A's queue and gets 429s while B's query is
// admitted, and A's max_query_range (reloaded from the file) refuses a
// long Loki range that B may query.
func TestQueryLimitsPerTenant(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "auth.yaml")
	writeAuth := func(rangeA string) {
		t.Helper()
		y := fmt.Sprintf(`tenants:
  team-a:
    keys: [{sha256: %q, scopes: [read]}]
    limits: {max_query_range: %s}
  team-b:
    keys: [{sha256: %q, scopes: [read]}]
`, keyHash("key-a"), rangeA, keyHash("key-b"))
		if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeAuth("1h")

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	qf := addQueryLimitFlags(fs)
	if err := fs.Parse([]string{"--query.max-concurrent=2", "--query.max-concurrent-per-tenant=1", "--query.max-queued=1", "--query.queue-timeout=1h", "--query.max-range=30d"}); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(slog.New(slog.DiscardHandler))
	if err := d.openAuth(file); err != nil {
		t.Fatal(err)
	}

	// A query: holds its slot until release is closed, after checking
	// its range as the Loki API does.
	started, release := make(chan string, 8), make(chan struct{})
	query := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.ParseInt(r.FormValue("start"), 10, 64)
		end, _ := strconv.ParseInt(r.FormValue("end"), 10, 64)
		if err := querylimit.CheckRange(r.Context(), time.Unix(0, start), time.Unix(0, end)); err != nil {
			querylimit.WriteError(w, r, http.StatusBadRequest, err)
			return
		}
		if r.FormValue("hold") != "" {
			started <- r.FormValue("hold")
			<-release
		}
		_, _ = w.Write([]byte(`{"status":"success"}`))
	})
	srv := httptest.NewServer(d.guard(portQuery, d.limitQueries(qf, query)))
	defer srv.Close()

	get := func(key string, rng time.Duration, hold string) (int, string) {
		end := time.Unix(1.7e9, 0)
		u := fmt.Sprintf("%s/loki/api/v1/query_range?query=%%7Bservice%%3D%%22x%%22%%7D&start=%d&end=%d&hold=%s",
			srv.URL, end.Add(-rng).UnixNano(), end.UnixNano(), hold)
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The range limits: A's own 1h, B the flag's 30d.
	if code, body := get("key-a", 2*time.Hour, ""); code != http.StatusBadRequest ||
		!strings.Contains(body, `tenant \"team-a\" (max_query_range in --auth.config)`) {
		t.Errorf("team-a, 2h: got %d %s; want 400 naming team-a's max_query_range", code, body)
	}
	if code, body := get("key-b", 2*time.Hour, ""); code != http.StatusOK {
		t.Errorf("team-b, 2h: got %d %s; want 200", code, body)
	}
	if code, body := get("key-b", 31*24*time.Hour, ""); code != http.StatusBadRequest || !strings.Contains(body, "--query.max-range") {
		t.Errorf("team-b, 31d: got %d %s; want 400 naming --query.max-range", code, body)
	}
	// A reload of the file applies to the next query.
	writeAuth("3h")
	if err := d.auth.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, body := get("key-a", 2*time.Hour, ""); code != http.StatusOK {
		t.Errorf("team-a, 2h after max_query_range became 3h: got %d %s; want 200", code, body)
	}
	if got := gathered(t, d, "vigil_query_limit_refused_total", "range"); got != 2 {
		t.Errorf(`vigil_query_limit_refused_total{reason="range"}: got %v, want 2`, got)
	}

	// A's storm: one runs (its share), one waits, the rest get 429.
	done := make(chan int, 2)
	for range 2 {
		go func() { code, _ := get("key-a", time.Hour, "a"); done <- code }()
	}
	<-started
	// The other waits in A's queue before more come.
	for deadline := time.Now().Add(30 * time.Second); queuedNow(t, d) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("team-a's second query is not queued: %v waiting", queuedNow(t, d))
		}
	}
	for range 3 {
		if code, body := get("key-a", time.Hour, ""); code != http.StatusTooManyRequests || !strings.Contains(body, `tenant \"team-a\"`) {
			t.Errorf("team-a past its queue: got %d %s; want 429 naming the tenant", code, body)
		}
	}
	// B is admitted meanwhile.
	go func() { code, _ := get("key-b", time.Hour, "b"); done <- code }()
	if who := <-started; who != "b" {
		t.Errorf("the next query to start: got team %s's, want team-b's", who)
	}
	close(release)
	for range 3 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("an admitted query: got %d, want 200", code)
		}
	}
}

// gathered is the value of the series of name with the label value lv in
// d's registry.
func gathered(t *testing.T, d *daemon, name, lv string) float64 {
	t.Helper()
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == lv {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{%q} not in the registry", name, lv)
	return 0
}

// queuedNow is the number of queries waiting in d's limiter.
func queuedNow(t *testing.T, d *daemon) float64 {
	t.Helper()
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vigil_query_limit_queued" {
			n := 0.0
			for _, m := range mf.GetMetric() {
				n += m.GetGauge().GetValue()
			}
			return n
		}
	}
	return 0
}
