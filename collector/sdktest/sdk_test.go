package sdktest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/opentracing/opentracing-go"
	"github.com/opentracing/opentracing-go/ext"
	"github.com/prometheus/client_golang/prometheus"
	jaeger "github.com/uber/jaeger-client-go"
	"github.com/uber/jaeger-client-go/transport"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/sdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startCollector runs a collector with disk queues for logs and spans on
// free ports; it stops at the end of the test.
func startCollector(t *testing.T) (c *collector.Collector, logs, spans *diskqueue.Queue) {
	t.Helper()
	logs, spans = openQueue(t), openQueue(t)
	o := collector.DefaultOptions()
	o.Listen = collector.Addrs{HTTP: "127.0.0.1:0", GRPC: "127.0.0.1:0", JaegerHTTP: "127.0.0.1:0"}
	return runCollector(t, o, collector.Queues{Logs: logs, Spans: spans}), logs, spans
}

// openQueue opens a disk queue in a new directory; it closes at the end
// of the test, after the collector stopped.
func openQueue(t *testing.T) *diskqueue.Queue {
	t.Helper()
	o := diskqueue.DefaultOptions()
	o.Dir = t.TempDir()
	q, err := diskqueue.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// runCollector runs a collector with o (quiet, batching for 5 ms) on q
// until the end of the test.
func runCollector(t *testing.T, o collector.Options, q collector.Queues) *collector.Collector {
	t.Helper()
	o.BatchMaxWait = 5 * time.Millisecond
	o.Logger = slog.New(slog.DiscardHandler)
	o.Registerer = prometheus.NewRegistry()
	c, err := collector.New(o, q)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("collector: %v", err)
		}
	})
	return c
}

// drain reads and commits every message of q, decoding each with dec.
func drain[T any](t *testing.T, q *diskqueue.Queue, dec func([]T, []byte) ([]T, error)) []T {
	t.Helper()
	var out []T
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		m, err := q.Fetch(ctx)
		cancel()
		if err != nil {
			return out
		}
		if out, err = dec(out, m.Value); err != nil {
			t.Fatal(err)
		}
		if err := q.Commit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// lockedBuffer is the SDK's stdout in the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// TestTraceThroughJaegerClient follows one request through three services
// into a real collector: front (on the SDK) calls legacy (on
// jaeger-client-go, which reads and writes only uber-trace-id), which
// calls leaf (on the SDK again). The five spans must reach the collector's
// span queue as one trace with the right parents, and the log lines the
// SDK shipped must reach its log queue with the trace and span ids.
func TestTraceThroughJaegerClient(t *testing.T) {
	c, logQueue, spanQueue := startCollector(t)
	var stdout lockedBuffer
	shutdown, err := sdk.Init(sdk.Config{Service: "front", Grade: 2, Env: "test", Version: "1.0",
		Collector: "http://" + c.Addr("collector"), ShipLogs: true, LogsFlushInterval: 20 * time.Millisecond,
		LogOutput: &stdout, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	sdkClient := &http.Client{Transport: sdk.HTTPTransport(nil)}

	leafMux := http.NewServeMux()
	leafMux.HandleFunc("GET /leaf/{id}", func(w http.ResponseWriter, r *http.Request) {
		sdk.Logger().InfoContext(r.Context(), "leaf reached", "id", r.PathValue("id"))
	})
	leaf := httptest.NewServer(sdk.HTTPMiddleware(leafMux))
	defer leaf.Close()

	tracer, closer := jaeger.NewTracer("legacy", jaeger.NewConstSampler(true),
		jaeger.NewRemoteReporter(transport.NewHTTPTransport("http://"+c.Addr("jaeger-http")+"/api/traces")),
		jaeger.TracerOptions.Gen128Bit(true))
	legacyClient := &http.Client{}
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parent, err := tracer.Extract(opentracing.HTTPHeaders, opentracing.HTTPHeadersCarrier(r.Header))
		if err != nil {
			t.Errorf("jaeger-client-go cannot read the SDK's headers %v: %v", r.Header, err)
		}
		span := tracer.StartSpan("legacy-handler", ext.RPCServerOption(parent))
		defer span.Finish()
		out := tracer.StartSpan("legacy-call-leaf", opentracing.ChildOf(span.Context()), ext.SpanKindRPCClient)
		req, _ := http.NewRequest("GET", leaf.URL+"/leaf/9", nil)
		tracer.Inject(out.Context(), opentracing.HTTPHeaders, opentracing.HTTPHeadersCarrier(req.Header))
		resp, err := legacyClient.Do(req)
		out.Finish()
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	}))
	defer legacy.Close()

	frontMux := http.NewServeMux()
	frontMux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		sdk.Logger().InfoContext(r.Context(), "front handler", "order", r.PathValue("id"))
		req, _ := http.NewRequestWithContext(r.Context(), "GET", legacy.URL+"/legacy", nil)
		resp, err := sdkClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})
	front := httptest.NewServer(sdk.HTTPMiddleware(frontMux))
	defer front.Close()

	resp, err := http.Get(front.URL + "/orders/17")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /orders/17: %d", resp.StatusCode)
	}
	closer.Close() // flushes the Jaeger spans to the collector
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err) // flushes the SDK's spans and log lines
	}
	sdkClient.CloseIdleConnections()
	legacyClient.CloseIdleConnections()

	spans := drain(t, spanQueue, otlptraces.Unmarshal)
	byName := map[string]model.Span{}
	for _, s := range spans {
		byName[s.Service+" "+s.Name] = s
	}
	get := func(key string, kind model.SpanKind) model.Span {
		t.Helper()
		s, ok := byName[key]
		if !ok {
			t.Fatalf("no span %q among %d: %v", key, len(spans), keys(byName))
		}
		if kind != 0 && s.Kind != kind {
			t.Errorf("span %q: kind %v; want %v", key, s.Kind, kind)
		}
		return s
	}
	frontServer := get("front GET /orders/{id}", model.SpanKindServer)
	frontClient := get("front GET", model.SpanKindClient)
	legacyServer := get("legacy legacy-handler", model.SpanKindServer)
	legacyClientSpan := get("legacy legacy-call-leaf", model.SpanKindClient)
	leafServer := get("front GET /leaf/{id}", model.SpanKindServer)
	if len(spans) != 5 {
		t.Errorf("got %d spans; want 5: %v", len(spans), keys(byName))
	}
	for _, p := range []struct {
		child, parent model.Span
	}{{frontClient, frontServer}, {legacyServer, frontClient}, {legacyClientSpan, legacyServer}, {leafServer, legacyClientSpan}} {
		if p.child.TraceID != frontServer.TraceID || p.child.ParentSpanID != p.parent.SpanID {
			t.Errorf("span %q: trace %v parent %v; want trace %v, child of %q (%v)", p.child.Name,
				p.child.TraceID, p.child.ParentSpanID, frontServer.TraceID, p.parent.Name, p.parent.SpanID)
		}
	}
	if frontServer.ParentSpanID != (model.SpanID{}) {
		t.Errorf("the front span has parent %v; want a root", frontServer.ParentSpanID)
	}
	if frontServer.Grade != 2 || frontServer.Env != "test" || leafServer.Grade != 2 {
		t.Errorf("SDK spans: grade %d env %q; want 2 and test", frontServer.Grade, frontServer.Env)
	}

	traceID := fmt.Sprintf("%x", frontServer.TraceID[:])
	recs := drain(t, logQueue, otlplogs.Unmarshal)
	f := func(msg string, span model.Span) {
		t.Helper()
		for _, r := range recs {
			if r.Message != msg {
				continue
			}
			if r.TraceID != traceID || r.SpanID != fmt.Sprintf("%x", span.SpanID[:]) || r.Service != "front" || r.Grade != 2 || r.Env != "test" {
				t.Errorf("log %q: trace %q span %q service %q grade %d env %q; want trace %s, span %x, front, 2, test",
					msg, r.TraceID, r.SpanID, r.Service, r.Grade, r.Env, traceID, span.SpanID[:])
			}
			return
		}
		t.Errorf("log line %q did not reach the collector's queue (%d records)", msg, len(recs))
	}
	f("front handler", frontServer)
	f("leaf reached", leafServer)
	if !bytes.Contains(stdout.b.Bytes(), []byte(`"trace_id":"`+traceID+`"`)) {
		t.Errorf("stdout has no line with trace id %s:\n%s", traceID, stdout.b.String())
	}
}

// TestOTLPgRPC exports the SDK's spans over OTLP/gRPC instead of HTTP.
func TestOTLPgRPC(t *testing.T) {
	c, _, spanQueue := startCollector(t)
	shutdown, err := sdk.Init(sdk.Config{Service: "grpc-export", Grade: 1, Collector: "http://" + c.Addr("collector"),
		Protocol: "grpc", CollectorGRPC: c.Addr("otlp-grpc"), LogOutput: io.Discard, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(sdk.HTTPMiddleware(mux))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := drain(t, spanQueue, otlptraces.Unmarshal)
	if len(spans) != 1 || spans[0].Name != "GET /ping" || spans[0].Service != "grpc-export" || spans[0].Grade != 1 {
		t.Errorf("got %+v; want the one server span of GET /ping", spans)
	}
}

func keys(m map[string]model.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
