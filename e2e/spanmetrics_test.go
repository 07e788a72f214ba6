//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
)

// TestSpanGoldenSignals: a trace sent with the OpenTelemetry SDK shows on
// all-in-one's /metrics as the golden signals of its service — the server
// span is a request, its client child is not.
func TestSpanGoldenSignals(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(p.collector), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	otelTrace(t, exp, "golden-e2e") // a server span POST /pay and its client child "charge card"
	server := []string{"service_name", "golden-e2e", "span_name", "POST /pay", "span_kind", "SPAN_KIND_SERVER", "status_code", "STATUS_CODE_UNSET"}
	eventually(t, 10*time.Second, "the request counted on /metrics", func() (bool, string) {
		got := metric(t, p.collector, "traces_span_metrics_calls_total", server...)
		return got == 1, fmt.Sprintf("traces_span_metrics_calls_total%v = %v; want 1", server, got)
	})
	if got := metric(t, p.collector, "traces_span_metrics_duration_milliseconds_count", server...); got != 1 {
		t.Errorf("latency observations of POST /pay: %v; want 1", got)
	}
	if got := metric(t, p.collector, "traces_span_metrics_calls_total", "span_name", "charge card"); got != 0 {
		t.Errorf("requests named after the client span: %v; want 0", got)
	}
}
