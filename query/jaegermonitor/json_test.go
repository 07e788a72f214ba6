package jaegermonitor

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// TestFamilyJSON: the family is written as Jaeger's query service writes
// its metrics.MetricFamily with jsonpb: lowerCamelCase names, the type by
// name, span_name as "operation", RFC 3339 timestamps, NaN as a string,
// and no "metrics" at all when there is no series.
func TestFamilyJSON(t *testing.T) {
	f := func(fam family, want string) {
		t.Helper()
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(fam); err != nil {
			t.Fatal(err)
		}
		if got := b.String(); got != want+"\n" {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	m := promql.Matrix{{
		Metric: labels.FromStrings("service_name", "cart", "span_name", "GET /cart"),
		Floats: []promql.FPoint{{T: 1764748800000, F: 0.25}, {T: 1764748860500, F: math.NaN()}, {T: 1764748920000, F: 0}},
	}}
	f(toFamily("service_operation_latencies", "0.95th quantile latency, grouped by service & operation", m),
		`{"name":"service_operation_latencies","type":"GAUGE","help":"0.95th quantile latency, grouped by service \u0026 operation",`+
			`"metrics":[{"labels":[{"name":"service_name","value":"cart"},{"name":"operation","value":"GET /cart"}],"metricPoints":[`+
			`{"gaugeValue":{"doubleValue":0.25},"timestamp":"2025-12-03T08:00:00Z"},`+
			`{"gaugeValue":{"doubleValue":"NaN"},"timestamp":"2025-12-03T08:01:00.500Z"},`+
			`{"gaugeValue":{"doubleValue":0},"timestamp":"2025-12-03T08:02:00Z"}]}]}`)
	f(toFamily("service_call_rate", "calls/sec, grouped by service", nil),
		`{"name":"service_call_rate","type":"GAUGE","help":"calls/sec, grouped by service"}`)
}
