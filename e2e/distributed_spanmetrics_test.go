//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestDistributedSpanGoldenSignals: spans sent to a distributed collector
// at a steady 20 a second go through Kafka to the ingester, whose /metrics
// a vigil federation scrapes (file service discovery, as in
// deploy/federation/prometheus.yml); vigil query --query.metrics-url serves
// Jaeger's /api/metrics/calls from that federation, at that rate, and the
// Prometheus API by proxy.
func TestDistributedSpanGoldenSignals(t *testing.T) {
	kafkaAddr, esURL := services(t)
	run := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	collectorAddr, ingAddr, fedAddr, queryAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	kafkaArgs := append([]string{"--kafka.brokers", kafkaAddr, "--kafka.topic", "vigil.logs." + run, "--kafka.spans-topic", "vigil.spans." + run,
		"--kafka.group", "g-" + run}, runDumpsTopics(run)...)
	esArgs := []string{"--es.urls", esURL, "--es.index-prefix", "vigil-" + run, "--es.jaeger.index-prefix", run, "--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run}
	p := &proc{t: t, collector: collectorAddr, query: queryAddr}
	startDaemon(t, collectorAddr, append(append([]string{"collector", "--data-dir", filepath.Join(dir, "c"), "--log.level", "warn",
		"--collector.http.listen", collectorAddr}, kafkaArgs...), p.receiverArgs()...)...)
	startDaemon(t, ingAddr, append(append([]string{"ingester", "--data-dir", filepath.Join(dir, "i"), "--log.level", "warn",
		"--ingester.listen", ingAddr}, kafkaArgs...), esArgs...)...)

	targets := filepath.Join(dir, "ingesters.json")
	if err := os.WriteFile(targets, []byte(fmt.Sprintf(`[{"targets": ["%s"]}]`, ingAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "federation.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: vigil-ingester
    honor_labels: true
    file_sd_configs: [{files: ['%s'], refresh_interval: 1s}]
`, targets)), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, fedAddr, "federation", "--data-dir", filepath.Join(dir, "f"), "--federation.listen", fedAddr,
		"--federation.config", cfg, "--log.level", "warn")
	startDaemon(t, queryAddr, append([]string{"query", "--log.level", "warn", "--query.listen", queryAddr,
		"--query.metrics-url", "http://" + fedAddr}, esArgs...)...)

	// 20 server spans a second, until the test ends.
	ctx, stop := context.WithCancel(context.Background())
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(collectorAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	service := "rate-" + run
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(200*time.Millisecond)))
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, s := tp.Tracer("e2e").Start(context.Background(), "GET /rate", trace.WithSpanKind(trace.SpanKindServer))
				s.End()
			}
		}
	}()
	t.Cleanup(func() { stop(); <-sent; _ = tp.Shutdown(context.Background()) })

	// The rate over 15 s windows, once the window is full of load.
	eventually(t, 3*time.Minute, "a call rate of 20/s from the query daemon's /api/metrics/calls", func() (bool, string) {
		v, body := lastCallRate(t, queryAddr, service)
		return v >= 16 && v <= 24, fmt.Sprintf("rate %.2f: %.600s", v, body)
	})
	q := fmt.Sprintf(`sum(rate(traces_span_metrics_calls_total{service_name=%q}[15s]))`, service)
	if v := promQuery(t, "http://"+queryAddr, q, time.Now()); v == "" {
		t.Errorf("%s through the query daemon's /api/v1/query: no answer", q)
	}
}

// lastCallRate is the latest point of service's call rate (per second,
// over 15 s) from Jaeger's monitoring API on addr, and the answer.
func lastCallRate(t *testing.T, addr, service string) (float64, string) {
	t.Helper()
	u := "http://" + addr + "/api/metrics/calls?" + url.Values{"service": {service}, "endTs": {fmt.Sprint(time.Now().UnixMilli())},
		"lookback": {"60000"}, "step": {"5000"}, "ratePer": {"15000"}, "spanKind": {"server"}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ans struct {
		Metrics []struct {
			MetricPoints []struct {
				GaugeValue struct {
					DoubleValue any `json:"doubleValue"`
				} `json:"gaugeValue"`
			} `json:"metricPoints"`
		} `json:"metrics"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &ans) != nil || len(ans.Metrics) != 1 || len(ans.Metrics[0].MetricPoints) == 0 {
		return 0, resp.Status + " " + string(b)
	}
	pts := ans.Metrics[0].MetricPoints
	v, _ := pts[len(pts)-1].GaugeValue.DoubleValue.(float64)
	return v, string(b)
}
