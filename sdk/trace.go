package sdk

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/vigilhq/vigil/sdk/resilience"
	"go.opentelemetry.io/contrib/propagators/jaeger"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// The options of the SDK's spans, built once: an option passed inline
// costs an allocation per span.
var (
	serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// newPropagator reads and writes W3C traceparent/tracestate, W3C baggage
// and Jaeger's uber-trace-id, so that services still on jaeger-client-go
// join the same traces.
func newPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}, jaeger.Jaeger{})
}

// resourceAttrs are the process attributes Vigil's collector reads:
// service.name, host.name, deployment.environment.name and vigil.grade.
func resourceAttrs(c Config) []attribute.KeyValue {
	kv := []attribute.KeyValue{
		attribute.String("service.name", c.Service),
		attribute.Int("vigil.grade", c.Grade),
		attribute.String("telemetry.sdk.name", "vigil"),
		attribute.String("telemetry.sdk.language", "go"),
	}
	if c.Version != "" {
		kv = append(kv, attribute.String("service.version", c.Version))
	}
	if c.Env != "" {
		kv = append(kv, attribute.String("deployment.environment.name", c.Env))
	}
	if c.Host != "" {
		kv = append(kv, attribute.String("host.name", c.Host))
	}
	return kv
}

// newTracerProvider exports spans to the collector in batches; the
// exporter retries through p (newExportPolicy), not with its own loop.
func newTracerProvider(c Config, base *url.URL, p resilience.Policy) (*sdktrace.TracerProvider, error) {
	var exp *otlptrace.Exporter
	var err error
	if c.Protocol == "grpc" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.CollectorGRPC),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
			otlptracegrpc.WithDialOption(grpc.WithChainUnaryInterceptor(resilience.UnaryClientInterceptor(p, c.Grade)))}
		if base.Scheme == "http" {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(context.Background(), opts...)
	} else {
		// The client's timeout bounds an export with its retries, as the
		// batch span processor's export timeout does.
		client := &http.Client{Timeout: 30 * time.Second, Transport: idempotent{resilience.Transport(nil, p, c.Grade)}}
		exp, err = otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(base.String()+"/v1/traces"),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}), otlptracehttp.WithHTTPClient(client))
	}
	if err != nil {
		return nil, err
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(resourceAttrs(c)...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*c.SampleRate))),
	), nil
}
