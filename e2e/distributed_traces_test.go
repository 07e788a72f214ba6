//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/internal/otlptraces"
)

// TestDistributedTraces runs vigil collector, ingester and query as three
// processes on real Kafka and Elasticsearch. Every real client's trace is
// read back through the query daemon's Jaeger API; then a load of traces
// over OTLP/gRPC goes through while the collector and the ingester are
// killed with SIGKILL and Kafka and Elasticsearch each go away for a while,
// and each span must be stored exactly once, with its service dependency
// counted once, in documents of Jaeger's span layout.
func TestDistributedTraces(t *testing.T) {
	kafkaAddr, esURL := services(t)
	run := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	collectorAddr, ingAddr, queryAddr := freePort(t), freePort(t), freePort(t)
	kafkaArgs := append([]string{"--kafka.brokers", kafkaAddr, "--kafka.topic", "vigil.logs." + run, "--kafka.spans-topic", "vigil.spans." + run,
		"--kafka.group", "g-" + run}, runDumpsTopics(run)...)
	esArgs := []string{"--es.urls", esURL, "--es.index-prefix", "vigil-" + run, "--es.jaeger.index-prefix", run, "--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run}
	p := &proc{t: t, collector: collectorAddr, query: queryAddr}
	col := startDaemon(t, collectorAddr, append(append([]string{"collector", "--data-dir", filepath.Join(dir, "c"), "--log.level", "warn",
		"--collector.http.listen", collectorAddr}, kafkaArgs...), p.receiverArgs()...)...)
	ing := startDaemon(t, ingAddr, append(append([]string{"ingester", "--data-dir", filepath.Join(dir, "i"), "--log.level", "warn",
		"--ingester.listen", ingAddr}, kafkaArgs...), esArgs...)...)
	startDaemon(t, queryAddr, append([]string{"query", "--log.level", "warn", "--query.listen", queryAddr}, esArgs...)...)

	checkRealClients(t, p)
	checkZipkinSharedSpan(t, p)

	// The load: traces of a "front" root span and children in "store",
	// exported by two SDK providers sharing the trace context.
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	provider := func(service string) *sdktrace.TracerProvider {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.otlpGRPC), otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond,
				MaxInterval: 2 * time.Second, MaxElapsedTime: 3 * time.Minute}))
		if err != nil {
			t.Fatal(err)
		}
		return sdktrace.NewTracerProvider(
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
			sdktrace.WithSpanProcessor(rec),
			sdktrace.WithBatcher(exp, sdktrace.WithBlocking(), sdktrace.WithMaxQueueSize(20000),
				sdktrace.WithBatchTimeout(50*time.Millisecond)))
	}
	front, store := provider("front-"+run), provider("store-"+run)
	const traces, children = 4000, 4
	faults := map[int]func(){
		1000: func() { col.kill(); time.Sleep(time.Second); col.start() },
		2500: func() { ing.kill(); time.Sleep(time.Second); ing.start() },
	}
	if os.Getenv("VIGIL_TEST_SERVICE_CONTROL") == "1" {
		faults[500] = func() { serviceControl(t, "kafka.sh", "down") } // spans wait in the spool
		faults[1500] = func() { serviceControl(t, "kafka.sh", "up") }
		faults[3000] = func() { serviceControl(t, "elasticsearch.sh", "down") } // the ingester retries
		faults[3500] = func() { serviceControl(t, "elasticsearch.sh", "up") }
	}
	for i := 0; i < traces; i++ {
		rctx, root := front.Tracer("e2e").Start(ctx, "GET /item", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.Int("seq", i)))
		for j := 0; j < children; j++ {
			_, c := store.Tracer("e2e").Start(rctx, "SELECT item", trace.WithSpanKind(trace.SpanKindServer))
			c.End()
		}
		root.End()
		if f := faults[i]; f != nil {
			f()
		}
		if i%100 == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, tp := range []*sdktrace.TracerProvider{front, store} {
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("the OpenTelemetry SDK could not export every span: %v", err)
		}
	}
	want := traces * (1 + children)
	spanIndices := run + "-jaeger-span-*"
	ofLoad := fmt.Sprintf(`{"terms":{"process.serviceName":["front-%s","store-%s"]}}`, run, run)
	eventually(t, 3*time.Minute, "every span in Elasticsearch", func() (bool, string) {
		n := esQueryCount(t, esURL, spanIndices, ofLoad)
		return n >= want, fmt.Sprintf("%d of %d", n, want)
	})
	time.Sleep(3 * time.Second) // anything extra would show up now
	if n := esQueryCount(t, esURL, spanIndices, ofLoad); n != want {
		t.Fatalf("Elasticsearch holds %d spans of the load; want exactly %d", n, want)
	}

	// Whole traces through the query daemon, for a sample of trace ids.
	ended := rec.Ended()
	for i := 0; i < len(ended); i += len(ended) / 7 {
		id := ended[i].SpanContext().TraceID().String()
		tr := p.getTrace(id, 1+children)
		for _, s := range tr.Spans {
			if svc := tr.Processes[s.ProcessID].ServiceName; s.OperationName == "SELECT item" && (svc != "store-"+run || len(s.References) != 1) {
				t.Errorf("trace %s: child span %+v in %q", id, s, svc)
			}
		}
	}
	// Search by service, operation and tag.
	q := url.Values{"service": {"front-" + run}, "operation": {"GET /item"}, "tags": {`{"seq":"1234"}`}, "limit": {"10"}}
	code, body, _ := p.get("/api/traces?" + q.Encode())
	var found struct{ Data []jaegerTrace }
	if code != 200 || json.Unmarshal([]byte(body), &found) != nil || len(found.Data) != 1 || len(found.Data[0].Spans) != 1+children {
		t.Errorf("search by tag seq=1234: %d %.300s; want one trace of %d spans", code, body, 1+children)
	}
	// The dependency front → store, counted once per call.
	code, body, _ = p.get(fmt.Sprintf("/api/dependencies?endTs=%d&lookback=%d", time.Now().Add(time.Minute).UnixMilli(), time.Hour.Milliseconds()))
	var deps struct {
		Data []struct {
			Parent, Child string
			CallCount     int
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &deps) != nil {
		t.Fatalf("/api/dependencies: %d %s", code, body)
	}
	calls := -1
	for _, d := range deps.Data {
		if d.Parent == "front-"+run && d.Child == "store-"+run {
			calls = d.CallCount
		}
	}
	if calls != traces*children {
		t.Errorf("dependency front → store: %d calls; want %d (%s)", calls, traces*children, body)
	}

	checkMappingAgainstJaeger(t, esURL, run, time.Now())
	checkSpanTopicWithKcat(t, kafkaAddr, "vigil.spans."+run)
}

// checkSpanTopicWithKcat reads the span topic with kcat: every message is
// keyed by a trace id, a trace's messages share one partition, and a
// message's value is an OTLP export request holding spans of its key's
// trace only.
func checkSpanTopicWithKcat(t *testing.T, broker, topic string) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed (deploy/local/deps.sh installs it)")
	}
	out, err := exec.Command(kcat, "-b", broker, "-C", "-t", topic, "-e", "-q", "-f", "%k %p\n").Output()
	if err != nil {
		t.Fatalf("kcat -C %s: %v", topic, err)
	}
	partition := map[string]string{}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		key, p, _ := strings.Cut(line, " ")
		if len(key) != 32 || strings.Trim(key, "0123456789abcdef") != "" {
			t.Fatalf("message key %q is not a trace id", key)
		}
		if q, ok := partition[key]; ok && q != p {
			t.Fatalf("trace %s is on partitions %s and %s", key, q, p)
		}
		partition[key] = p
		n++
	}
	key, err := exec.Command(kcat, "-b", broker, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "1", "-e", "-q", "-f", "%k").Output()
	if err != nil {
		t.Fatal(err)
	}
	value, err := exec.Command(kcat, "-b", broker, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "1", "-e", "-q", "-f", "%s").Output()
	if err != nil {
		t.Fatal(err)
	}
	spans, err := otlptraces.Unmarshal(nil, value)
	if err != nil || len(spans) == 0 {
		t.Fatalf("the first message of partition 0 is not an OTLP span batch: %v", err)
	}
	for _, s := range spans {
		if s.TraceID.String() != string(key) {
			t.Errorf("message keyed %s holds a span of trace %s", key, s.TraceID)
		}
	}
	t.Logf("kcat read %d messages of %d traces on %s", n, len(partition), topic)
}

// checkZipkinSharedSpan sends a Zipkin RPC whose client and server halves
// share a span id ("shared": true), as Brave reports it: the server's own
// spans first (a call to db under the shared id), then the server half,
// then the client half. Both halves are stored, the server half under an
// id of its own as a child of the client half, the server's spans under
// the server half, and the calls are web → users and users → db, once each.
func checkZipkinSharedSpan(t *testing.T, p *proc) {
	t.Helper()
	now := time.Now().UnixMicro()
	const trace, shared = "4c2ba1d6a7bd3f1c", "51a3b0c4d5e6f701"
	for _, body := range []string{
		fmt.Sprintf(`[{"traceId":%[1]q,"parentId":%[2]q,"id":"61a3b0c4d5e6f702","name":"select","kind":"CLIENT","timestamp":%[3]d,"duration":1000,"localEndpoint":{"serviceName":"users"}},
		 {"traceId":%[1]q,"parentId":"61a3b0c4d5e6f702","id":"71a3b0c4d5e6f703","name":"select","kind":"SERVER","timestamp":%[3]d,"duration":800,"localEndpoint":{"serviceName":"db"}}]`,
			trace, shared, now+1500),
		fmt.Sprintf(`[{"traceId":%q,"id":%q,"name":"get /user","kind":"SERVER","shared":true,"timestamp":%d,"duration":3000,"localEndpoint":{"serviceName":"users"}}]`,
			trace, shared, now+1000),
		fmt.Sprintf(`[{"traceId":%q,"id":%q,"name":"get /user","kind":"CLIENT","timestamp":%d,"duration":5000,"localEndpoint":{"serviceName":"web"}}]`,
			trace, shared, now),
	} {
		if code, err := httpPostJSON("http://"+p.zipkin+"/api/v2/spans", body); err != nil || code != 202 {
			t.Fatalf("Zipkin intake: %d %v", code, err)
		}
	}
	tr := p.getTrace("0000000000000000"+trace, 4)
	ids, parents := map[string]string{}, map[string]string{}
	for _, s := range tr.Spans {
		svc := tr.Processes[s.ProcessID].ServiceName + " " + s.OperationName
		ids[svc] = s.SpanID
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				parents[svc] = r.SpanID
			}
		}
	}
	server := ids["users get /user"]
	if ids["web get /user"] != shared || server == "" || server == shared {
		t.Fatalf("shared Zipkin span: span ids %v; want the client's kept and the server's distinct", ids)
	}
	if parents["users get /user"] != shared || parents["users select"] != server || parents["db select"] != ids["users select"] {
		t.Errorf("shared Zipkin span: parents %v; want server half under the client half (%s), the server's call under the server half (%s)",
			parents, shared, server)
	}
	eventually(t, 20*time.Second, "the shared span's calls", func() (bool, string) {
		code, body, _ := p.get(fmt.Sprintf("/api/dependencies?endTs=%d&lookback=%d", time.Now().Add(time.Minute).UnixMilli(), time.Hour.Milliseconds()))
		var deps struct {
			Data []struct {
				Parent, Child string
				CallCount     int
			}
		}
		if code != 200 || json.Unmarshal([]byte(body), &deps) != nil {
			return false, body
		}
		calls := map[string]int{}
		for _, d := range deps.Data {
			calls[d.Parent+"→"+d.Child] = d.CallCount
		}
		return calls["web→users"] == 1 && calls["users→db"] == 1 && calls["web→db"] == 0, fmt.Sprint(calls)
	})
}
