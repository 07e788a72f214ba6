package collector

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// memQueue keeps what is published, for tests of the receivers.
type memQueue struct {
	mu   sync.Mutex
	msgs int
}

func (q *memQueue) Publish(context.Context, string, []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs++
	return nil
}

func (q *memQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.msgs
}

// TestListenServesEveryReceiver starts a collector on every port, sends
// to each TCP receiver, and checks that Run drains and releases them all
// when its context ends.
func TestListenServesEveryReceiver(t *testing.T) {
	logs, spans := &memQueue{}, &memQueue{}
	o := DefaultOptions()
	const any = "127.0.0.1:0"
	o.Listen = Addrs{HTTP: any, GRPC: any, Zipkin: any, JaegerHTTP: any, JaegerCompact: any, JaegerBinary: any}
	o.Ops = func(m *http.ServeMux) {
		m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	}
	o.BatchMaxWait = 0
	o.Logger, o.Registerer = slog.New(slog.DiscardHandler), prometheus.NewRegistry()
	c, err := New(o, Queues{Logs: logs, Spans: spans})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"collector", "otlp-grpc", "zipkin", "jaeger-http", "jaeger-compact", "jaeger-binary"} {
		if c.Addr(name) == "" {
			t.Fatalf("Addr(%q) is empty after Listen", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	post := func(name, path, body string, want int) {
		t.Helper()
		resp, err := http.Post("http://"+c.Addr(name)+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s%s: got %d; want %d", name, path, resp.StatusCode, want)
		}
	}
	post("collector", "/api/v1/logs", `{"service":"a","message":"hello"}`, 200)
	post("zipkin", "/api/v2/spans", `[{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get","timestamp":1700000000000000,"duration":10,"localEndpoint":{"serviceName":"z"}}]`, 202)
	post("jaeger-http", "/api/traces", `{}`, 415)
	for _, name := range []string{"collector", "zipkin", "jaeger-http"} {
		resp, err := http.Get("http://" + c.Addr(name) + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s/healthz: got %d; want the Ops handler's 200", name, resp.StatusCode)
		}
	}
	conn, err := grpc.NewClient(c.Addr("otlp-grpc"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{2})
	sp.SetName("op")
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Errorf("OTLP/gRPC export: %v", err)
	}
	conn.Close()
	if got := logs.len(); got != 1 {
		t.Errorf("log queue messages: got %d; want 1", got)
	}
	if got := spans.len(); got < 2 {
		t.Errorf("span queue messages: got %d; want at least 2 (Zipkin and OTLP/gRPC)", got)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, name := range []string{"collector", "otlp-grpc", "zipkin", "jaeger-http"} {
		if conn, err := net.Dial("tcp", c.Addr(name)); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Run returned", name)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
}
