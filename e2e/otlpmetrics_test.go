//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestOTLPMetricsAllInOne: the OpenTelemetry Go metrics SDK pushes a
// counter and a histogram to all-in-one's collector, over OTLP/HTTP
// (gzip) and OTLP/gRPC; PromQL on the query port finds their values.
func TestOTLPMetricsAllInOne(t *testing.T) {
	p := startAllInOne(t, filepath.Join(t.TempDir(), "data"))
	for _, job := range []string{"shop-http", "shop-grpc"} {
		if err := pushMetrics(t, p, job, job == "shop-grpc"); err != nil {
			t.Fatalf("%s: export: %v", job, err)
		}
	}
	checkPushedMetrics(t, "http://"+p.query, "shop-http", "shop-grpc")
}

// TestOTLPMetricsDistributed: vigil collector forwards the SDK's metrics to
// a vigil federation (--collector.metrics-url); while the federation is
// down the SDK's export fails as retryable (503 / UNAVAILABLE).
func TestOTLPMetricsDistributed(t *testing.T) {
	dir := t.TempDir()
	collectorAddr, fedAddr := freePort(t), freePort(t)
	p := &proc{t: t, collector: collectorAddr}
	startDaemon(t, collectorAddr, append([]string{"collector", "--data-dir", filepath.Join(dir, "c"), "--log.level", "warn",
		"--collector.http.listen", collectorAddr, "--collector.metrics-url", "http://" + fedAddr + "/api/v1/otlp/v1/metrics"},
		p.receiverArgs()...)...)
	for _, grpc := range []bool{false, true} {
		err := pushMetrics(t, p, "shop-down", grpc)
		if err == nil || !(strings.Contains(err.Error(), "retry-able") || strings.Contains(err.Error(), "Unavailable")) {
			t.Fatalf("gRPC %v: export with the federation down: %v, want 503 / UNAVAILABLE", grpc, err)
		}
	}
	startDaemon(t, fedAddr, "federation", "--data-dir", filepath.Join(dir, "f"), "--federation.listen", fedAddr, "--log.level", "warn")
	for _, job := range []string{"shop-http", "shop-grpc"} {
		if err := pushMetrics(t, p, job, job == "shop-grpc"); err != nil {
			t.Fatalf("%s: export: %v", job, err)
		}
	}
	checkPushedMetrics(t, "http://"+fedAddr, "shop-http", "shop-grpc")
	if got := promQuery(t, "http://"+fedAddr, `count({job="shop-down"})`, time.Now().Add(time.Second)); got != "" {
		t.Errorf("refused export stored: %s", got)
	}
}

// pushMetrics exports, without retries, a counter e2e_orders (7) and a
// histogram e2e_latency (0.05, 0.5, 0.7, 5) of service job to p's
// collector over OTLP/gRPC or OTLP/HTTP with gzip, and returns the
// collector's answer.
func pushMetrics(t *testing.T, p *proc, job string, overGRPC bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var exp sdkmetric.Exporter
	var err error
	if overGRPC {
		exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(p.otlpGRPC), otlpmetricgrpc.WithInsecure(),
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
	} else {
		exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(p.collector), otlpmetrichttp.WithInsecure(),
			otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	}
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", job))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	m := mp.Meter("e2e")
	orders, err := m.Int64Counter("e2e_orders")
	if err != nil {
		t.Fatal(err)
	}
	latency, err := m.Float64Histogram("e2e_latency", otelmetric.WithExplicitBucketBoundaries(0.1, 1, 10))
	if err != nil {
		t.Fatal(err)
	}
	orders.Add(ctx, 5, otelmetric.WithAttributes(attribute.String("method", "card")))
	orders.Add(ctx, 2, otelmetric.WithAttributes(attribute.String("method", "card")))
	for _, v := range []float64{0.05, 0.5, 0.7, 5} {
		latency.Record(ctx, v)
	}
	// ForceFlush exports and returns the collector's answer.
	return mp.ForceFlush(ctx)
}

// checkPushedMetrics finds pushMetrics' values of jobs with PromQL on base.
// Acknowledged means appended: they are there at once (queried a second on:
// promQuery's time is in whole seconds).
func checkPushedMetrics(t *testing.T, base string, jobs ...string) {
	t.Helper()
	now := time.Now().Add(time.Second)
	for _, job := range jobs {
		for q, want := range map[string]string{
			`e2e_orders_total{job="` + job + `",method="card"}`:            "7",
			`e2e_latency_count{job="` + job + `"}`:                         "4",
			`e2e_latency_sum{job="` + job + `"}`:                           "6.25",
			`e2e_latency_bucket{job="` + job + `",le="1"}`:                 "3",
			`histogram_quantile(1, e2e_latency_bucket{job="` + job + `"})`: "10",
		} {
			if got := promQuery(t, base, q, now); got != want {
				t.Errorf("%s = %q, want %s", q, got, want)
			}
		}
	}
}
