//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

const metricsKeyA, metricsKeyB = "metrics-team-a-0123456789abcdef0123456789", "metrics-team-b-0123456789abcdef0123456789"

// metricsTenantsAuth writes an --auth.config of team-a and team-b that
// trusts the collectors on loopback, and returns its path.
func metricsTenantsAuth(t *testing.T, dir string) string {
	t.Helper()
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`trusted_proxies: {cidrs: [127.0.0.1/32]}
tenants:
  team-a:
    keys: [{sha256: %q, scopes: [write, read]}]
  team-b:
    keys: [{sha256: %q, scopes: [write, read]}]
`, sha(metricsKeyA), sha(metricsKeyB))), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestMetricsTenants: all-in-one with --auth.config; team-a sends OTLP
// metrics to the collector over HTTP, team-b over gRPC and by remote
// write to the query port, each with its key. Through the Prometheus API
// client on the query port and the federation port each tenant sees only
// its own series, and a request without a key is refused.
func TestMetricsTenants(t *testing.T) {
	dir := t.TempDir()
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", metricsTenantsAuth(t, dir))
	pushTenantsOTLP(t, p)
	// team-b also remote-writes to the query port, claiming team-a's label.
	u, _ := url.Parse("http://" + p.query + "/api/v1/write")
	wc, err := remote.NewWriteClient("e2e", &remote.ClientConfig{URL: &config_util.URL{URL: u}, Timeout: model.Duration(10 * time.Second),
		HTTPClientConfig: config_util.HTTPClientConfig{Authorization: &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(metricsKeyB)}}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "e2e_tenant_orders_total"}, {Name: "job", Value: "shop-b-rw"}, {Name: "vigil_tenant", Value: "team-a"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}}).Marshal()
	if _, err := wc.Store(context.Background(), snappy.Encode(nil, req), 0); err != nil {
		t.Fatalf("team-b's remote write: %v", err)
	}
	checkTenantReads(t, []string{p.query, p.federation}, []string{"shop-a"}, []string{"shop-b", "shop-b-rw"})
	if code, _, _ := authRequest(t, "GET", "http://"+p.query+"/api/v1/query?query=e2e_tenant_orders_total", nil); code != 401 {
		t.Errorf("query without a key: %d; want 401", code)
	}
}

// TestMetricsTenantsDistributed: vigil collector forwards each tenant's
// OTLP metrics to vigil federation with X-Scope-OrgID (the collector is a
// trusted proxy), and each tenant reads only its own there.
func TestMetricsTenantsDistributed(t *testing.T) {
	dir := t.TempDir()
	conf := metricsTenantsAuth(t, dir)
	collectorAddr, fedAddr := freePort(t), freePort(t)
	p := &proc{t: t, collector: collectorAddr}
	startDaemon(t, fedAddr, "federation", "--data-dir", filepath.Join(dir, "f"), "--federation.listen", fedAddr,
		"--log.level", "warn", "--auth.config", conf)
	startDaemon(t, collectorAddr, append([]string{"collector", "--data-dir", filepath.Join(dir, "c"), "--log.level", "warn",
		"--collector.http.listen", collectorAddr, "--collector.metrics-url", "http://" + fedAddr + "/api/v1/otlp/v1/metrics",
		"--auth.config", conf}, p.receiverArgs()...)...)
	pushTenantsOTLP(t, p)
	checkTenantReads(t, []string{fedAddr}, []string{"shop-a"}, []string{"shop-b"})
}

// pushTenantsOTLP sends e2e_tenant_orders of job shop-a as team-a over
// OTLP/HTTP and of shop-b as team-b over OTLP/gRPC to p's collector, each
// with a vigil_tenant attribute naming the other tenant.
func pushTenantsOTLP(t *testing.T, p *proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(p.collector), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + metricsKeyA}),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(p.otlpGRPC), otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithHeaders(map[string]string{"authorization": "Bearer " + metricsKeyB}),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	for job, exp := range map[string]sdkmetric.Exporter{"shop-a": httpExp, "shop-b": grpcExp} {
		other := map[string]string{"shop-a": "team-b", "shop-b": "team-a"}[job]
		mp := sdkmetric.NewMeterProvider(
			sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", job))),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
		c, _ := mp.Meter("e2e").Int64Counter("e2e_tenant_orders")
		c.Add(ctx, 1, otelmetric.WithAttributes(attribute.String("vigil_tenant", other)))
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatalf("%s: export: %v", job, err)
		}
		_ = mp.Shutdown(ctx)
	}
}

// checkTenantReads queries each of ports with the Prometheus API client as
// team-a and team-b: each sees e2e_tenant_orders_total of its jobs only,
// in query and label values, never the tenant label.
func checkTenantReads(t *testing.T, ports []string, jobsA, jobsB []string) {
	t.Helper()
	ctx := context.Background()
	all := append(slices.Clone(jobsA), jobsB...)
	for _, c := range []struct {
		key  string
		jobs []string
	}{{metricsKeyA, jobsA}, {metricsKeyB, jobsB}} {
		for _, port := range ports {
			cl, err := api.NewClient(api.Config{Address: "http://" + port,
				RoundTripper: config_util.NewAuthorizationCredentialsRoundTripper("Bearer", config_util.NewInlineSecret(c.key), api.DefaultRoundTripper)})
			if err != nil {
				t.Fatal(err)
			}
			papi := promv1.NewAPI(cl)
			v, _, _, err := papi.Query(ctx, `e2e_tenant_orders_total`, time.Now().Add(time.Second))
			if err != nil {
				t.Fatalf("%s: query: %v", port, err)
			}
			var jobs []string
			for _, s := range v.(model.Vector) {
				if _, ok := s.Metric["vigil_tenant"]; ok {
					t.Errorf("%s: %v shows the tenant label", port, s.Metric)
				}
				jobs = append(jobs, string(s.Metric["job"]))
			}
			slices.Sort(jobs)
			if !slices.Equal(jobs, c.jobs) {
				t.Errorf("%s: query as the tenant of %v: jobs %v", port, c.jobs, jobs)
			}
			vals, _, _, err := papi.LabelValues(ctx, "job", nil, time.Time{}, time.Time{})
			if err != nil {
				t.Fatalf("%s: label values: %v", port, err)
			}
			for _, j := range all {
				if got, want := slices.Contains(vals, model.LabelValue(j)), slices.Contains(c.jobs, j); got != want {
					t.Errorf("%s: label values of job %v; want %s: %v", port, vals, j, want)
				}
			}
		}
	}
}
