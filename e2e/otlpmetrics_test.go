//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(p.collector), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(p.otlpGRPC), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		service string
		exp     sdkmetric.Exporter
	}{{"shop-http", httpExp}, {"shop-grpc", grpcExp}} {
		mp := sdkmetric.NewMeterProvider(
			sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", tc.service))),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(tc.exp, sdkmetric.WithInterval(time.Hour))))
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
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatalf("%s: export: %v", tc.service, err)
		}
		if err := mp.Shutdown(ctx); err != nil {
			t.Fatalf("%s: shutdown: %v", tc.service, err)
		}
	}

	// Acknowledged means appended: the values are there at once (queried
	// a second on: promQuery's time is in whole seconds).
	now := time.Now().Add(time.Second)
	base := "http://" + p.query
	for _, job := range []string{"shop-http", "shop-grpc"} {
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
