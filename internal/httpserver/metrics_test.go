package httpserver

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	timed := NewRequestMetrics(RequestMetricsOpts{Subsystem: "query", Label: "endpoint",
		Help: "Requests.", DurationHelp: "Durations."}, reg)
	counted := NewRequestMetrics(RequestMetricsOpts{Subsystem: "collector", Label: "receiver", Name: "http_requests_total",
		Help: "Receiver requests."}, reg)
	timed.Observe("query_range", 200, time.Now().Add(-time.Second))
	timed.Observe("query_range", 400, time.Now())
	timed.Observe("query_range", 400, time.Now())
	counted.Count("logs_api", 429)
	counted.Observe("logs_api", 200, time.Now()) // not timed: counts only

	want := `
# HELP vigil_collector_http_requests_total Receiver requests.
# TYPE vigil_collector_http_requests_total counter
vigil_collector_http_requests_total{code="200",receiver="logs_api"} 1
vigil_collector_http_requests_total{code="429",receiver="logs_api"} 1
# HELP vigil_query_requests_total Requests.
# TYPE vigil_query_requests_total counter
vigil_query_requests_total{code="200",endpoint="query_range"} 1
vigil_query_requests_total{code="400",endpoint="query_range"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"vigil_query_requests_total", "vigil_collector_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "vigil_query_request_duration_seconds"); err != nil || n != 1 {
		t.Errorf("vigil_query_request_duration_seconds: got %d series, %v; want 1", n, err)
	}
	if n, _ := testutil.GatherAndCount(reg, "vigil_collector_request_duration_seconds"); n != 0 {
		t.Errorf("an untimed API has %d duration series; want none", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_query_request_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 3 || h.GetSampleSum() < 1 {
			t.Errorf("duration: got %d samples summing to %vs; want 3, at least 1s", h.GetSampleCount(), h.GetSampleSum())
		}
	}
}
