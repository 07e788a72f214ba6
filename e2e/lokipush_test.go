//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/snappy"
)

// TestLokiPush sends to a running all-in-one what Promtail and Alloy send
// (Loki's own push types, snappy protobuf) and what a script sends (JSON),
// and finds the lines, their stream labels and their trace context
// through the Loki query API; bad pushes get Loki's answers and leave the
// good data flowing.
func TestLokiPush(t *testing.T) {
	pushLokiAndQuery(t, startAllInOne(t, filepath.Join(t.TempDir(), "data")))
}

// TestDistributedLokiPush is TestLokiPush through Kafka and Elasticsearch:
// collector, ingester and query as separate daemons.
func TestDistributedLokiPush(t *testing.T) {
	kafkaAddr, esURL := services(t)
	run := fmt.Sprintf("e2epush%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	kafkaArgs := append([]string{"--kafka.brokers", kafkaAddr, "--kafka.topic", "vigil.logs." + run, "--kafka.group", "g-" + run, "--kafka.spans-topic", "vigil.spans." + run},
		runDumpsTopics(run)...)
	esArgs := []string{"--es.urls", esURL, "--es.index-prefix", "vigil-" + run + "-", "--es.jaeger.index-prefix", run, "--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run}
	pushLokiAndQuery(t, startCollectorIngesterQuery(t, dir, kafkaArgs, esArgs))
}

func pushLokiAndQuery(t *testing.T, p *proc) {
	t.Helper()
	now := time.Now().Truncate(time.Millisecond)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := push.PushRequest{Streams: []push.Stream{
		{Labels: `{job="e2e-push", host="node-1", env="prod", filename="/var/log/app.log"}`, Entries: []push.Entry{
			{Timestamp: now.Add(-2 * time.Second), Line: "protobuf line one"},
			{Timestamp: now.Add(-3 * time.Second), Line: "protobuf line two, out of order", StructuredMetadata: push.LabelsAdapter{
				{Name: "trace_id", Value: traceID}, {Name: "span_id", Value: "00f067aa0ba902b7"}, {Name: "user_id", Value: "42"},
			}},
		}},
	}}
	pb, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if code, body := p.post("/loki/api/v1/push", "application/x-protobuf", snappy.Encode(nil, pb)); code != 204 {
		t.Fatalf("protobuf push: got %d %q; want 204", code, body)
	}
	js := `{"streams":[{"stream":{"service_name":"e2e-push","level":"warn"},"values":[["` +
		itoa(int(now.Add(-time.Second).UnixNano())) + `","json line",{"trace_id":"` + traceID + `"}]]}]}`
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(js)); code != 204 {
		t.Fatalf("JSON push: got %d %q; want 204", code, body)
	}

	// Bad pushes: Loki's status and message, nothing stored.
	bad := func(name, ct string, body []byte, wantCode int, wantMsg string) {
		t.Helper()
		if code, resp := p.post("/loki/api/v1/push", ct, body); code != wantCode || !strings.Contains(resp, wantMsg) {
			t.Errorf("%s: got %d %q; want %d with %q", name, code, resp, wantCode, wantMsg)
		}
	}
	bad("bad snappy", "application/x-protobuf", []byte("plain text"), 400, "snappy: corrupt input")
	bad("bad protobuf", "application/x-protobuf", snappy.Encode(nil, []byte{0x0a, 0x09, 0x0a}), 400, "proto: PushRequest")
	ts := itoa(int(now.UnixNano()))
	bad("bad labels", "application/json", []byte(`{"streams":[{"stream":{},"values":[["`+ts+`","x"]]},{"values":[["`+ts+`","no labels"]]}]}`), 400, "error at least one label pair is required per stream")

	var got map[string]map[string]string // line → stream labels
	eventually(t, 60*time.Second, "pushed lines queryable", func() (bool, string) {
		got = map[string]map[string]string{}
		for _, s := range p.streams(`{service="e2e-push"}`, 100) {
			for _, v := range s.Values {
				got[v[1]] = s.Stream
			}
		}
		return len(got) == 3, itoa(len(got)) + " lines"
	})
	one := got["protobuf line one"]
	if one["host"] != "node-1" || one["env"] != "prod" || one["source"] != "loki" {
		t.Errorf("protobuf line one: stream labels %v", one)
	}
	if two := got["protobuf line two, out of order"]; two["trace_id"] != traceID || two["span_id"] != "00f067aa0ba902b7" {
		t.Errorf("structured metadata trace_id/span_id not in the result labels: %v", two)
	}
	if j := got["json line"]; j["level"] != "warn" || j["trace_id"] != traceID {
		t.Errorf("json line: labels %v", j)
	}
	if n := p.countLines(`{service="e2e-push"} | trace_id="`+traceID+`"`, 100); n != 2 {
		t.Errorf("lines with trace_id %s: %d; want 2", traceID, n)
	}
	// The {} stream of the partly bad push is kept, as Loki keeps it.
	eventually(t, 30*time.Second, "the {} stream's line queryable", func() (bool, string) {
		n := p.countLines(`{service="unknown_service"} |= "x"`, 100)
		return n == 1, itoa(n) + " lines"
	})
	if v := metric(t, p.collector, "vigil_collector_received_records_total", "receiver", "loki_push"); v != 4 {
		t.Errorf("received_records_total{receiver=loki_push} = %v; want 4", v)
	}
	if v := metric(t, p.collector, "vigil_collector_rejected_records_total", "receiver", "loki_push", "reason", "invalid"); v != 3 {
		t.Errorf("rejected_records_total{receiver=loki_push,reason=invalid} = %v; want 3", v)
	}
}
