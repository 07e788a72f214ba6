package collector

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

func TestTraceReceiversBadInput(t *testing.T) {
	qo := diskqueue.DefaultOptions()
	qo.Dir = t.TempDir()
	q, err := diskqueue.Open(qo)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	sampler, err := NewSampler(1, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTraces(q, sampler, 1<<20, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	mux := http.NewServeMux()
	tr.RegisterOTLP(mux)
	tr.RegisterZipkin(mux)
	tr.RegisterJaeger(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := func(path, ct, body string, wantCode int, wantBody string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		if resp.StatusCode != wantCode || !strings.Contains(string(b[:n]), wantBody) {
			t.Errorf("POST %s %q: got %d %q; want %d with %q", path, body, resp.StatusCode, b[:n], wantCode, wantBody)
		}
	}
	f("/v1/traces", "application/x-protobuf", "\xff\xff\xff", 400, "")
	f("/v1/traces", "text/plain", "x", 415, "unsupported Content-Type")
	f("/api/v2/spans", "application/json", `[{"traceId":"xyz","id":"6b221d5bc9e6496c","name":"a"}]`, 400, `span 0: field "traceId"`)
	f("/api/v2/spans", "application/json", `{"not":"an array"}`, 400, "nothing was accepted")
	f("/api/traces", "application/json", `{}`, 415, "application/x-thrift")
	f("/api/traces", "application/x-thrift", "garbage", 400, "jaeger")
	good := `[{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get","timestamp":1700000000000000,"duration":10,"localEndpoint":{"serviceName":"z"}}]`
	f("/api/v2/spans", "application/json", good, 202, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m, err := q.Fetch(ctx)
	if err != nil {
		t.Fatalf("the good Zipkin span was not queued: %v", err)
	}
	spans, err := otlptraces.Unmarshal(nil, m.Value)
	if err != nil || len(spans) != 1 || spans[0].Service != "z" || m.Key != "5af7183fb1d4cf5f5af7183fb1d4cf5f" {
		t.Errorf("queued %+v (key %q), %v", spans, m.Key, err)
	}
	if got := testutil.ToFloat64(tr.rejected.WithLabelValues("zipkin", "invalid")); got != 2 {
		t.Errorf("rejected Zipkin requests: got %v; want 2", got)
	}

	// UDP garbage is counted and dropped; the receiver keeps serving.
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uctx, ucancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.ServeJaegerUDP(uctx, conn, true) }()
	c, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c.Write([]byte("not thrift at all"))
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(tr.udpDrops.WithLabelValues("jaeger_udp_compact", "decode")) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(tr.udpDrops.WithLabelValues("jaeger_udp_compact", "decode")); got != 3 {
		t.Errorf("dropped datagrams: got %v; want 3", got)
	}
	ucancel()
	if err := <-done; err != nil {
		t.Errorf("ServeJaegerUDP: %v", err)
	}
}

// TestOTLPQueuedAsReceived checks the path that queues OTLP requests
// without converting them when the sampler keeps everything: the queued
// batch decodes to the spans sent, and kept spans are counted per service;
// with a sampling rate below 1 spans are sampled one by one.
func TestOTLPQueuedAsReceived(t *testing.T) {
	spans := []model.Span{testSpan(1, 1, "a"), testSpan(1, 2, "b"), testSpan(2, 1, "b")}
	for i := range spans {
		spans[i].TraceID[8] = 0xff // above any small sampling rate's threshold
	}
	for _, rate := range []float64{1, 0.000001} {
		var rec recorder
		reg := prometheus.NewRegistry()
		sampler, err := NewSampler(rate, "", reg)
		if err != nil {
			t.Fatal(err)
		}
		tr := NewTraces(&rec, sampler, 1<<20, slog.New(slog.DiscardHandler), reg)
		if code, msg, _ := tr.publishTraces(context.Background(), "otlp_grpc_traces", nil, otlptraces.ToTraces(spans)); code != http.StatusOK {
			t.Fatalf("rate %v: %d %s", rate, code, msg)
		}
		got := rec.spans()
		kept := testutil.ToFloat64(sampler.kept.WithLabelValues("b"))
		if rate == 1 && (got != 3 || kept != 2) {
			t.Errorf("rate 1: queued %d spans, kept %v of service b; want 3 and 2", got, kept)
		}
		if rate < 1 && (got != 0 || testutil.ToFloat64(sampler.dropped.WithLabelValues("b")) != 2) {
			t.Errorf("rate %v: queued %d spans; want none, 2 of b counted as sampled out", rate, got)
		}
	}
}
