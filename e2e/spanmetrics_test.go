//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// TestSpanGoldenSignalsInPromQL: in all-in-one the span-derived golden
// signals are written into the federation's TSDB (PromQL finds them on the
// query port), Jaeger's monitoring API answers from them for the Jaeger
// UI's Monitor tab, and the generated golden-signal rules, spans included,
// are loaded.
func TestSpanGoldenSignalsInPromQL(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(p.collector), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	otelTrace(t, exp, "golden-pql")
	q := `sum(traces_span_metrics_calls_total{service_name="golden-pql",span_kind="SPAN_KIND_SERVER"})`
	eventually(t, 60*time.Second, "the request in the TSDB", func() (bool, string) {
		v := promQuery(t, "http://"+p.query, q, time.Now())
		return v == "1", q + " = " + v
	})

	// A rate needs two writes of the counter (every 15 s).
	eventually(t, 60*time.Second, "the service's call rate from Jaeger's monitoring API", func() (bool, string) {
		u := "http://" + p.query + "/api/metrics/calls?" + url.Values{"service": {"golden-pql"}, "endTs": {fmt.Sprint(time.Now().UnixMilli())},
			"lookback": {"600000"}, "step": {"60000"}, "ratePer": {"600000"}}.Encode()
		resp, err := http.Get(u)
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.Contains(string(b), `"golden-pql"`) && strings.Contains(string(b), "metricPoints"),
			fmt.Sprintf("GET %s: %s %s", u, resp.Status, b)
	})

	resp, err := http.Get("http://" + p.query + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, group := range []string{"golden_vigil_http", "golden_vigil_spans"} {
		if !strings.Contains(string(b), `"name":"`+group) {
			t.Errorf("/api/v1/rules: no group %s among the loaded rules: %.400s", group, b)
		}
	}
}
