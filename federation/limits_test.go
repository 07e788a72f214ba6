package federation

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// series builds n remote-write series of one sample each, for service.
func series(service string, n int, ts int64) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, n)
	for i := range out {
		out[i] = prompb.TimeSeries{
			Labels: []prompb.Label{{Name: "__name__", Value: "vigil_test_pushed"}, {Name: "id", Value: fmt.Sprint(i)},
				{Name: "service", Value: service}},
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(i)}},
		}
	}
	return out
}

func encodeWrite(t testing.TB, ts []prompb.TimeSeries) []byte {
	t.Helper()
	b, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// metricValue sums the values of the series of name that have labels.
func metricValue(t *testing.T, fed *testFed, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
	mfs, err := fed.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// Prometheus' own remote-write client pushes a request in which one
// service passes its series budget: the series that fit and those of the
// other service are stored, the others refused with a 400 that the client
// does not retry, naming the limit.
func TestSeriesBudgetPartlyAcceptsRemoteWrite(t *testing.T) {
	t.Parallel()
	fed := startFedWith(t, t.TempDir(), "", func(o *Options) { o.Limits.MaxSeriesPerService = 3 })
	u, _ := url.Parse(fed.url + "/api/v1/write")
	c, err := remote.NewWriteClient("test", &remote.ClientConfig{URL: &config_util.URL{URL: u}, Timeout: model.Duration(10 * time.Second), RetryOnRateLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	_, err = c.Store(context.Background(), encodeWrite(t, append(series("noisy", 5, now), series("calm", 2, now)...)), 0)
	var rec remote.RecoverableError
	if err == nil || errors.As(err, &rec) {
		t.Fatalf("got %v; want a 400 the client does not retry", err)
	}
	for _, want := range []string{"400", "2 samples of new series were refused", `service "noisy"`, "--federation.limits.max-series-per-service"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("answer %q; want it to say %q", err, want)
		}
	}
	expect(t, client(t, fed.url), `count by (service) (vigil_test_pushed)`, "{service=\"calm\"}=2\n{service=\"noisy\"}=3")
	if got := metricValue(t, fed, "vigil_federation_push_refused_samples_total", "limit", "max-series-per-service"); got != 2 {
		t.Errorf("vigil_federation_push_refused_samples_total = %v; want 2", got)
	}
	// Series that exist keep taking samples.
	if _, err := c.Store(context.Background(), encodeWrite(t, series("noisy", 3, now+1000)), 0); err != nil {
		t.Errorf("samples of existing series: %v", err)
	}
}

// The OpenTelemetry Go SDK's exporter gets OTLP's partial_success when one
// service's attribute values pass its budget, and the data points that fit
// are stored.
func TestSeriesBudgetPartialSuccessOTLP(t *testing.T) {
	t.Parallel()
	// The SDK's resource gives the service's series a job label.
	fed := startFedWith(t, t.TempDir(), "", func(o *Options) { o.Limits.MaxSeriesPerService = 4 })
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(fed.url+"/api/v1/otlp/v1/metrics"), otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(semconv.ServiceName("checkout"))))
	counter, _ := mp.Meter("test").Int64Counter("vigil_test_orders")
	for i := range 6 {
		counter.Add(ctx, 1, otelmetric.WithAttributes(attribute.String("customer", fmt.Sprint(i))))
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	err = exp.Export(ctx, &rm)
	if err == nil || !strings.Contains(err.Error(), "--federation.limits.max-series-per-service") || !strings.Contains(err.Error(), "(2 metric data points rejected)") {
		t.Fatalf("export: %v; want OTLP's partial success naming the limit", err)
	}
	expect(t, client(t, fed.url), `count by (job) (vigil_test_orders_total)`, `{job="checkout"}=4`)
}

// Pushes past a size, sample or concurrency limit are refused whole,
// naming the limit and its value, and counted by limit.
func TestPushLimits(t *testing.T) {
	t.Parallel()
	fed := startFedWith(t, t.TempDir(), "", func(o *Options) {
		o.Limits.MaxPushBytes, o.Limits.MaxPushDecodedBytes, o.Limits.MaxPushSamples = 4096, 8192, 50
		o.Limits.MaxInflightPushes, o.Limits.PushQueueWait = 1, 10*time.Millisecond
	})
	now := time.Now().UnixMilli()
	post := func(path, enc string, body []byte) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", fed.url+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp, readAll(resp)
	}
	f := func(name, path, enc string, body []byte, code int, want string) {
		t.Helper()
		resp, msg := post(path, enc, body)
		if resp.StatusCode != code || !strings.Contains(msg, want) {
			t.Errorf("%s: got %d %q; want %d naming %q", name, resp.StatusCode, msg, code, want)
		}
	}
	// 8 KiB of label value: over 4096 bytes sent.
	big := series("svc", 1, now)
	big[0].Labels = append(big[0].Labels, prompb.Label{Name: "pad", Value: strings.Repeat("x", 8192)})
	raw, _ := (&prompb.WriteRequest{Timeseries: big}).Marshal()
	f("body", "/api/v1/write", "snappy", raw, http.StatusRequestEntityTooLarge, "exceeds 4096 bytes (--federation.limits.max-push-bytes)")
	// Compresses below 4096 bytes, decompresses above 8192.
	big[0].Labels[len(big[0].Labels)-1].Value = strings.Repeat("x", 10000)
	f("decoded", "/api/v1/write", "snappy", encodeWrite(t, big), http.StatusRequestEntityTooLarge, "exceeds 8192 bytes (--federation.limits.max-push-decoded-bytes)")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte{0}, 10000))
	zw.Close()
	f("otlp decoded", "/api/v1/otlp/v1/metrics", "gzip", gz.Bytes(), http.StatusRequestEntityTooLarge, "--federation.limits.max-push-decoded-bytes")
	f("samples", "/api/v1/write", "snappy", encodeWrite(t, series("svc", 60, now)), http.StatusRequestEntityTooLarge, "more than 50 samples (--federation.limits.max-push-samples)")
	c := client(t, fed.url)
	if got, err := values(t, c, `count(vigil_test_pushed)`); err != nil || got != "" {
		t.Errorf("after the refused push: %q, %v; want nothing stored", got, err)
	}
	// The one slot is taken: the next push waits 10ms, then is refused.
	fed.push.slots <- struct{}{}
	resp, msg := post("/api/v1/write", "snappy", encodeWrite(t, series("svc", 1, now)))
	<-fed.push.slots
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(msg, "limit is 1 (--federation.limits.max-inflight-pushes)") {
		t.Errorf("busy: got %d Retry-After %q %q; want 429 with Retry-After naming the limit", resp.StatusCode, resp.Header.Get("Retry-After"), msg)
	}
	f("fits", "/api/v1/write", "snappy", encodeWrite(t, series("svc", 50, now)), http.StatusNoContent, "")
	for limit, want := range map[string]float64{"max-push-bytes": 1, "max-push-decoded-bytes": 2, "max-push-samples": 1, "max-inflight-pushes": 1} {
		if got := metricValue(t, fed, "vigil_federation_push_refused_total", "limit", limit); got != want {
			t.Errorf("vigil_federation_push_refused_total{limit=%q} = %v; want %v", limit, got, want)
		}
	}
}

// The global series budget holds for scrapes too: a target keeps its
// series that fit, the others are skipped as out of bounds.
func TestSeriesBudgetBoundsScrapes(t *testing.T) {
	t.Parallel()
	var body strings.Builder
	for i := range 20 {
		fmt.Fprintf(&body, "vigil_test_scraped{id=\"%d\"} 1\n", i)
	}
	leaf := exposition(t, body.String())
	fed := startFedWith(t, t.TempDir(), fmt.Sprintf(`
global: {scrape_interval: 200ms}
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
`, hostOf(leaf)), func(o *Options) { o.Limits.MaxSeries = 10 })
	waitFor(t, 20*time.Second, func() error {
		if got := metricValue(t, fed, "vigil_federation_series_refused_total", "limit", "max-series"); got == 0 {
			return errors.New("no series refused yet")
		}
		return nil
	})
	if got := metricValue(t, fed, "vigil_federation_active_series"); got > 10 {
		t.Errorf("vigil_federation_active_series = %v; want at most 10", got)
	}
}

// Scrape jobs get Prometheus' sample and label limits by default, except
// those scraping /federate; what the configuration sets stays.
func TestScrapeDefaults(t *testing.T) {
	c, err := config.Load(`
scrape_configs:
  - job_name: svc
  - job_name: leaf
    metrics_path: /federate
  - job_name: set
    sample_limit: 7
    label_limit: 3
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyScrapeDefaults(c)
	got := map[string]string{}
	for _, sc := range c.ScrapeConfigs {
		got[sc.JobName] = fmt.Sprintf("%d %d %d %d", sc.SampleLimit, sc.LabelLimit, sc.LabelNameLengthLimit, sc.LabelValueLengthLimit)
	}
	want := map[string]string{"svc": "200000 64 256 4096", "leaf": "0 64 256 4096", "set": "7 3 256 4096"}
	for job, w := range want {
		if got[job] != w {
			t.Errorf("%s: limits %s; want %s", job, got[job], w)
		}
	}
}

// The real Prometheus remote-writes a job with more series than its
// budget: Vigil keeps the series that fit, refuses the others with a 400,
// and Prometheus counts them failed instead of retrying them.
func TestRealPrometheusRemoteWriteOverBudget(t *testing.T) {
	t.Parallel()
	var body strings.Builder
	for i := range 10 {
		fmt.Fprintf(&body, "vigil_test_budget{id=\"%d\"} 1\n", i)
	}
	leaf := exposition(t, body.String())
	fed := startFedWith(t, t.TempDir(), "", func(o *Options) { o.Limits.MaxSeriesPerService = 4 })
	prom := startPrometheus(t, fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: svc
    static_configs: [{targets: ['%s']}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 200ms}
`, hostOf(leaf), fed.url))
	// Prometheus' own series of the job (up, scrape_*) count too: 15 in all.
	expect(t, client(t, fed.url), `count({job="svc"})`, `{}=4`)
	waitFor(t, 30*time.Second, func() error {
		resp, err := http.Get(prom + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		for _, line := range strings.Split(readAll(resp), "\n") {
			if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[0], "prometheus_remote_storage_samples_failed_total") && f[1] != "0" {
				return nil
			}
		}
		return errors.New("Prometheus counts no failed samples (prometheus_remote_storage_samples_failed_total)")
	})
	if got := metricValue(t, fed, "vigil_federation_push_refused_total", "endpoint", "write", "limit", "max-series-per-service"); got == 0 {
		t.Error("no push counted as refused by max-series-per-service")
	}
}
