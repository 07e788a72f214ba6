//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// promQuery answers an instant PromQL query at ts on base (a Prometheus
// HTTP API) as the value of its single series, or "" when there is none.
func promQuery(t *testing.T, base, q string, ts time.Time) string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatInt(ts.Unix(), 10)}}.Encode())
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil {
		return fmt.Sprintf("error: %s %s", resp.Status, b)
	}
	if len(r.Data.Result) != 1 {
		return ""
	}
	return fmt.Sprint(r.Data.Result[0].Value[1])
}

// All-in-one scrapes with --federation.config, serves the Prometheus API on
// the federation port and on the query port, and keeps its TSDB across a
// restart.
func TestAllInOneFederation(t *testing.T) {
	dir := t.TempDir()
	fedAddr := freePort(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs: [{job_name: self, static_configs: [{targets: ['%s']}]}]\n", fedAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--federation.listen", fedAddr, "--federation.config", cfg)
	var scraped time.Time
	eventually(t, 30*time.Second, "up of the federation's own target on the query port", func() (bool, string) {
		scraped = time.Now()
		v := promQuery(t, "http://"+p.query, `up{job="self"}`, scraped)
		return v == "1", v
	})
	if v := promQuery(t, "http://"+fedAddr, `up{job="self"}`, scraped); v != "1" {
		t.Errorf("up on the federation port: got %q, want 1", v)
	}
	p.stop()
	p.restart()
	if v := promQuery(t, "http://"+p.query, `up{job="self"}`, scraped); v != "1" {
		t.Errorf("up after a restart, at %v: got %q, want 1", scraped, v)
	}
}

// vigil federation runs on its own and reloads its configuration on SIGHUP.
func TestFederationRoleReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	write := func(job string) {
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs: [{job_name: %s, static_configs: [{targets: ['%s']}]}]\n", job, addr)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	d := startDaemon(t, addr, "federation", "--data-dir", filepath.Join(dir, "data"), "--federation.listen", addr,
		"--federation.config", cfg, "--federation.config-check-interval", "0", "--log.level", "warn")
	eventually(t, 30*time.Second, "up of job first", func() (bool, string) {
		v := promQuery(t, "http://"+addr, `up{job="first"}`, time.Now())
		return v == "1", v
	})
	write("second")
	if err := syscall.Kill(d.vigil.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "up of job second after SIGHUP", func() (bool, string) {
		v := promQuery(t, "http://"+addr, `up{job="second"}`, time.Now())
		return v == "1", v
	})
}
