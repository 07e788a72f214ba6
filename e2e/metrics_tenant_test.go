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
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestMetricsTenants: all-in-one with --auth.config; team-a sends OTLP
// metrics to the collector over HTTP, team-b over gRPC and by remote
// write to the query port, each with its key. Through the Prometheus API
// client on the query port and the federation port each tenant sees only
// its own series, and a request without a key is refused.
func TestMetricsTenants(t *testing.T) {
	const keyA, keyB = "metrics-team-a-0123456789abcdef0123456789", "metrics-team-b-0123456789abcdef0123456789"
	dir := t.TempDir()
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`tenants:
  team-a:
    keys: [{sha256: %q, scopes: [write, read]}]
  team-b:
    keys: [{sha256: %q, scopes: [write, read]}]
`, sha(keyA), sha(keyB))), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", conf)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	header := map[string]string{"Authorization": "Bearer " + keyA}
	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(p.collector), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithHeaders(header), otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(p.otlpGRPC), otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithHeaders(map[string]string{"authorization": "Bearer " + keyB}),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	for job, exp := range map[string]sdkmetric.Exporter{"shop-a": httpExp, "shop-b": grpcExp} {
		mp := sdkmetric.NewMeterProvider(
			sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", job))),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
		c, _ := mp.Meter("e2e").Int64Counter("e2e_tenant_orders")
		c.Add(ctx, 1)
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatalf("%s: export: %v", job, err)
		}
		_ = mp.Shutdown(ctx)
	}
	// team-b also remote-writes to the query port, claiming team-a's label.
	u, _ := url.Parse("http://" + p.query + "/api/v1/write")
	wc, err := remote.NewWriteClient("e2e", &remote.ClientConfig{URL: &config_util.URL{URL: u}, Timeout: model.Duration(10 * time.Second),
		HTTPClientConfig: config_util.HTTPClientConfig{Authorization: &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(keyB)}}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "e2e_tenant_orders_total"}, {Name: "job", Value: "shop-b-rw"}, {Name: "vigil_tenant", Value: "team-a"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}}).Marshal()
	if _, err := wc.Store(ctx, snappy.Encode(nil, req), 0); err != nil {
		t.Fatalf("team-b's remote write: %v", err)
	}

	for _, c := range []struct {
		key  string
		jobs []string
	}{{keyA, []string{"shop-a"}}, {keyB, []string{"shop-b", "shop-b-rw"}}} {
		for _, port := range []string{p.query, p.federation} {
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
				t.Errorf("%s: query as %s: jobs %v; want %v", port, c.jobs[0], jobs, c.jobs)
			}
			vals, _, _, err := papi.LabelValues(ctx, "job", nil, time.Time{}, time.Time{})
			if err != nil {
				t.Fatalf("%s: label values: %v", port, err)
			}
			for _, j := range []string{"shop-a", "shop-b", "shop-b-rw"} {
				if got, want := slices.Contains(vals, model.LabelValue(j)), slices.Contains(c.jobs, j); got != want {
					t.Errorf("%s: label values of job %v; want %s: %v", port, vals, j, want)
				}
			}
		}
	}
	if code, _, _ := authRequest(t, "GET", "http://"+p.query+"/api/v1/query?query=e2e_tenant_orders_total", nil); code != 401 {
		t.Errorf("query without a key: %d; want 401", code)
	}
}
