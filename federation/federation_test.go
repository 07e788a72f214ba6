package federation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Samples written before a restart are there after it.
func TestRestartKeepsTSDB(t *testing.T) {
	dir := t.TempDir()
	o := DefaultOptions()
	o.Dir = dir
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	app := f.Appendable().Appender(context.Background())
	for i := range 10 {
		if _, err := app.Append(0, labels.FromStrings("__name__", "vigil_test_kept", "i", fmt.Sprint(i)), now.UnixMilli(), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q, err := f.Engine().NewInstantQuery(context.Background(), f.Queryable(), nil, "sum(vigil_test_kept)", now)
	if err != nil {
		t.Fatal(err)
	}
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if v, err := res.Vector(); err != nil || len(v) != 1 || v[0].F != 45 {
		t.Errorf("after restart: got %s, want 45", res)
	}
}

// A target that file service discovery no longer lists goes stale at once:
// its series end with a stale marker instead of lingering for the lookback.
func TestDisappearedTargetGoesStale(t *testing.T) {
	leaf := exposition(t, leafMetrics)
	sd := filepath.Join(t.TempDir(), "targets.json")
	write := func(s string) {
		if err := os.WriteFile(sd+".tmp", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(sd+".tmp", sd); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`[{"targets": ["%s"], "labels": {"team": "a"}}]`, hostOf(leaf)))
	fed := startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: svc
    file_sd_configs: [{files: ['%s'], refresh_interval: 1s}]
`, sd))
	c := client(t, fed.url)
	expect(t, c, `vigil_test_in_flight`, fmt.Sprintf(`vigil_test_in_flight{instance="%s", job="svc", team="a"}=5`, hostOf(leaf)))
	write(`[]`)
	expect(t, c, `vigil_test_in_flight`, ``)
	expect(t, c, `count(up{job="svc"})`, ``)
	// The series is stale, not deleted: it is there a moment ago.
	expect(t, c, `count(count_over_time(vigil_test_in_flight[1m]))`, `{}=1`)
}

// Malformed input gets a 4xx naming the problem, and is counted.
func TestMalformedInput(t *testing.T) {
	bad := exposition(t, "vigil_test_ok 1\nthis is { not exposition\n")
	fed := startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: bad
    static_configs: [{targets: ['%s']}]
`, hostOf(bad)))
	c := client(t, fed.url)
	expect(t, c, `up{job="bad"}`, fmt.Sprintf(`up{instance="%s", job="bad"}=0`, hostOf(bad)))
	targets, err := c.Targets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(targets.Active) != 1 || !strings.Contains(targets.Active[0].LastError, `while parsing: "this is"`) {
		t.Errorf("targets: got %+v, want the target down with its parse error", targets.Active)
	}

	f := func(name string, code int, body string, send func() (int, string)) {
		t.Helper()
		got, gotBody := send()
		if got != code || !strings.Contains(gotBody, body) {
			t.Errorf("%s: got %d %q, want %d with %q", name, got, gotBody, code, body)
		}
	}
	f("remote write not snappy-compressed", 400, "corrupt input", func() (int, string) { return postRemoteWrite(t, fed.url, []byte("garbage")) })
	f("remote write not protobuf", 400, "proto", func() (int, string) {
		return postRemoteWrite(t, fed.url, snappy.Encode(nil, []byte("\xff\xff\xff not a WriteRequest")))
	})
	get := func(path string) func() (int, string) {
		return func() (int, string) {
			resp, err := http.Get(fed.url + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
	}
	f("federate without match[]", 400, "match[]: at least one series selector", get("/federate"))
	f("federate selecting everything", 400, "at least one matcher", get("/federate?match[]="+url.QueryEscape(`{job=~".*"}`)))
	f("federate with a bad selector", 400, `match[] "{job=": `, get("/federate?match[]="+url.QueryEscape("{job=")))
	f("bad PromQL", 400, "bad_data", get("/api/v1/query?query="+url.QueryEscape("sum(")))

	for endpoint, want := range map[string]float64{"write": 2, "federate": 3, "query": 1} {
		if got := testutil.ToFloat64(fed.metrics.rejected.WithLabelValues(endpoint, "400")); got != want {
			t.Errorf("vigil_federation_rejected_requests_total{endpoint=%q,code=\"400\"} = %v, want %v", endpoint, got, want)
		}
	}
}

// Service discovery other than static, file and HTTP is refused, by name.
func TestConfigRefusesUnregisteredDiscovery(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(p, []byte("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs: [{role: pod}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), "kubernetes_sd_configs") {
		t.Errorf("got %v, want an error naming kubernetes_sd_configs", err)
	}
	if err := os.WriteFile(p, []byte("scrape_configs:\n  - job_name: h\n    http_sd_configs: [{url: 'http://127.0.0.1:1/sd'}]\n    file_sd_configs: [{files: [x.json]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err != nil {
		t.Errorf("http_sd_configs and file_sd_configs: %v", err)
	}
}

// A configuration that no longer loads leaves the previous one in effect,
// and a fixed one is applied.
func TestReload(t *testing.T) {
	leaf := exposition(t, leafMetrics)
	fed := startFed(t, t.TempDir(), "global: {scrape_interval: 1s}\n")
	if err := os.WriteFile(fed.config, []byte("scrape_configs: [{job_name: x, bogus: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fed.Reload(); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("reload of a bad file: got %v, want an error naming the field", err)
	}
	if got := testutil.ToFloat64(fed.metrics.lastReload); got != 0 {
		t.Errorf("vigil_federation_config_last_reload_successful = %v, want 0", got)
	}
	if err := os.WriteFile(fed.config, []byte(fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs: [{job_name: svc, static_configs: [{targets: ['%s']}]}]\n", hostOf(leaf))), 0o644); err != nil {
		t.Fatal(err)
	}
	// Picked up by the file check, without Reload.
	expect(t, client(t, fed.url), `vigil_test_in_flight`, fmt.Sprintf(`vigil_test_in_flight{instance="%s", job="svc"}=5`, hostOf(leaf)))
}

// Targets come from http_sd_configs, and OTLP metrics are taken on
// /api/v1/otlp/v1/metrics.
func TestHTTPDiscoveryAndOTLP(t *testing.T) {
	leaf := exposition(t, leafMetrics)
	sd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"targets": ["%s"], "labels": {"zone": "z1"}}]`, hostOf(leaf))
	}))
	t.Cleanup(sd.Close)
	fed := startFed(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: svc
    http_sd_configs: [{url: '%s', refresh_interval: 1s}]
`, sd.URL))
	c := client(t, fed.url)
	expect(t, c, `vigil_test_in_flight`, fmt.Sprintf(`vigil_test_in_flight{instance="%s", job="svc", zone="z1"}=5`, hostOf(leaf)))

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("vigil_test_otlp_queue_depth")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetDoubleValue(17)
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(fed.url+"/api/v1/otlp/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("OTLP: %s", resp.Status)
	}
	expect(t, c, `vigil_test_otlp_queue_depth`, `vigil_test_otlp_queue_depth{job="checkout"}=17`)
}
