package jaegerthrift

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opentracing/opentracing-go"
	"github.com/opentracing/opentracing-go/ext"
	otlog "github.com/opentracing/opentracing-go/log"
	jaegerclient "github.com/uber/jaeger-client-go"
	"github.com/uber/jaeger-client-go/transport"

	"github.com/vigilhq/vigil/internal/model"
)

var update = flag.Bool("update", false, "rewrite the client-made fuzz seeds in testdata/fuzz")

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 123_456_789, time.UTC)

// traceWithClient makes a small trace with the real jaeger-client-go tracer,
// reporting to sender, and closes the tracer so that everything is flushed.
func traceWithClient(t *testing.T, sender jaegerclient.Transport) {
	t.Helper()
	tracer, closer := jaegerclient.NewTracer("checkout",
		jaegerclient.NewConstSampler(true),
		jaegerclient.NewRemoteReporter(sender),
		jaegerclient.TracerOptions.Gen128Bit(true),
		jaegerclient.TracerOptions.Tag("deployment", "prod"),
	)
	root := tracer.StartSpan("GET /cart", ext.SpanKindRPCServer, opentracing.StartTime(t0))
	root.SetTag("http.method", "GET")
	root.SetTag("http.status_code", 200)
	root.SetTag("ratio", 0.25)
	root.SetTag("cached", true)
	root.SetTag("payload", []byte{0, 1, 0xff})
	root.LogFields(otlog.String("event", "cache miss"), otlog.Int("retries", 2))

	child := tracer.StartSpan("SELECT", opentracing.ChildOf(root.Context()), ext.SpanKindRPCClient,
		opentracing.StartTime(t0.Add(time.Millisecond)))
	ext.Error.Set(child, true)
	child.FinishWithOptions(opentracing.FinishOptions{FinishTime: t0.Add(1500 * time.Microsecond)})

	async := tracer.StartSpan("async", opentracing.FollowsFrom(root.Context()), opentracing.StartTime(t0.Add(2*time.Millisecond)))
	async.FinishWithOptions(opentracing.FinishOptions{FinishTime: t0.Add(3 * time.Millisecond)})

	root.FinishWithOptions(opentracing.FinishOptions{FinishTime: t0.Add(2500 * time.Microsecond)})
	if err := closer.Close(); err != nil {
		t.Fatalf("cannot close tracer: %v", err)
	}
}

func checkClientTrace(t *testing.T, spans []model.Span) {
	t.Helper()
	byName := map[string]model.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	if len(spans) != 3 || len(byName) != 3 {
		t.Fatalf("got %d spans %v; want GET /cart, SELECT, async", len(spans), keys(byName))
	}
	root, child, async := byName["GET /cart"], byName["SELECT"], byName["async"]
	host, _ := os.Hostname()
	us := func(d time.Duration) int64 { return d.Microseconds() * 1000 }
	for _, s := range spans {
		if s.Service != "checkout" {
			t.Errorf("%s: got service %q; want checkout", s.Name, s.Service)
		}
		if s.Host != host {
			t.Errorf("%s: got host %q; want %q (the client's hostname process tag)", s.Name, s.Host, host)
		}
		if i := find(s.Process, "deployment"); i < 0 || s.Process[i].Str != "prod" {
			t.Errorf("%s: got process %+v; want deployment=prod among it", s.Name, s.Process)
		}
		if s.TraceID != root.TraceID {
			t.Errorf("%s: got trace %s; want %s", s.Name, s.TraceID, root.TraceID)
		}
	}
	if root.TraceID[0] == 0 && root.TraceID[1] == 0 && root.TraceID[2] == 0 && root.TraceID[3] == 0 {
		t.Errorf("got trace id %s; want a 128-bit id with its high half set", root.TraceID)
	}
	if !root.ParentSpanID.IsZero() || len(root.References) != 0 {
		t.Errorf("root: got parent %s, references %+v; want none", root.ParentSpanID, root.References)
	}
	if root.StartTime != t0.UnixMicro()*1000 || root.Duration != us(2500*time.Microsecond) {
		t.Errorf("root: got start %d, duration %d; want %d, %d", root.StartTime, root.Duration, t0.UnixMicro()*1000, us(2500*time.Microsecond))
	}
	if root.Kind != model.SpanKindServer || root.StatusCode != 0 {
		t.Errorf("root: got kind %d, status %d; want server, unset", root.Kind, root.StatusCode)
	}
	wantAttrs := map[string]model.TypedAttr{
		"http.method":      {Key: "http.method", Type: model.AttrString, Str: "GET"},
		"http.status_code": {Key: "http.status_code", Type: model.AttrInt64, Int: 200},
		"ratio":            {Key: "ratio", Type: model.AttrFloat64, Float: 0.25},
		"cached":           {Key: "cached", Type: model.AttrBool, Int: 1},
		"payload":          {Key: "payload", Type: model.AttrBinary, Str: "\x00\x01\xff"},
	}
	for k, want := range wantAttrs {
		if i := find(root.Attributes, k); i < 0 || root.Attributes[i] != want {
			t.Errorf("root: attribute %s: got %+v; want %+v", k, root.Attributes, want)
		}
	}
	if find(root.Attributes, "span.kind") >= 0 {
		t.Errorf("root: span.kind left in attributes %+v", root.Attributes)
	}
	if len(root.Events) != 1 || root.Events[0].Name != "cache miss" ||
		len(root.Events[0].Attributes) != 1 || root.Events[0].Attributes[0] != (model.TypedAttr{Key: "retries", Type: model.AttrInt64, Int: 2}) {
		t.Errorf("root: got events %+v; want cache miss with retries=2", root.Events)
	}
	if root.Events[0].Time < root.StartTime {
		t.Errorf("root: event time %d before span start %d", root.Events[0].Time, root.StartTime)
	}

	if child.ParentSpanID != root.SpanID {
		t.Errorf("SELECT: got parent %s; want %s", child.ParentSpanID, root.SpanID)
	}
	if len(child.References) != 1 || child.References[0] != (model.SpanRef{Type: model.RefChildOf, TraceID: root.TraceID, SpanID: root.SpanID}) {
		t.Errorf("SELECT: got references %+v; want CHILD_OF root", child.References)
	}
	if child.StartTime != t0.Add(time.Millisecond).UnixMicro()*1000 || child.Duration != us(500*time.Microsecond) {
		t.Errorf("SELECT: got start %d, duration %d", child.StartTime, child.Duration)
	}
	if child.Kind != model.SpanKindClient || child.StatusCode != 2 || find(child.Attributes, "error") >= 0 {
		t.Errorf("SELECT: got kind %d, status %d, attributes %+v; want client, error, no error tag", child.Kind, child.StatusCode, child.Attributes)
	}

	if len(async.References) != 1 || async.References[0] != (model.SpanRef{Type: model.RefFollowsFrom, TraceID: root.TraceID, SpanID: root.SpanID}) {
		t.Errorf("async: got references %+v; want FOLLOWS_FROM root", async.References)
	}
	if async.ParentSpanID != root.SpanID {
		t.Errorf("async: got parent %s; want %s (from FOLLOWS_FROM)", async.ParentSpanID, root.SpanID)
	}
	if async.Duration != us(time.Millisecond) {
		t.Errorf("async: got duration %d; want %d", async.Duration, us(time.Millisecond))
	}
}

func keys(m map[string]model.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestJaegerClientUDP(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sender, err := jaegerclient.NewUDPTransport(conn.LocalAddr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	traceWithClient(t, sender)

	var spans []model.Span
	var first []byte
	buf := make([]byte, MaxDatagramSize+1)
	for deadline := 5 * time.Second; ; deadline = 200 * time.Millisecond {
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		n, _, err := conn.ReadFrom(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCompactDatagram(buf[:n])
		if err != nil {
			t.Fatalf("cannot decode datagram %d from jaeger-client-go: %v", len(spans), err)
		}
		if first == nil {
			first = append([]byte(nil), buf[:n]...)
		}
		spans = append(spans, got...)
	}
	if first == nil {
		t.Fatal("no datagram received from jaeger-client-go")
	}
	checkClientTrace(t, spans)
	if *update {
		writeSeed(t, "FuzzDecodeCompactDatagram", "client-udp", first)
	}
}

func TestJaegerClientHTTP(t *testing.T) {
	bodies := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/traces" || r.Header.Get("Content-Type") != "application/x-thrift" {
			http.Error(w, fmt.Sprintf("unexpected %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type")), http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		bodies <- b
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	traceWithClient(t, transport.NewHTTPTransport(srv.URL+"/api/traces"))
	close(bodies)
	var spans []model.Span
	var first []byte
	for b := range bodies {
		got, err := DecodeBatchBinary(b)
		if err != nil {
			t.Fatalf("cannot decode body from jaeger-client-go: %v", err)
		}
		if first == nil {
			first = b
		}
		spans = append(spans, got...)
	}
	if first == nil {
		t.Fatal("no request received from jaeger-client-go")
	}
	checkClientTrace(t, spans)
	if *update {
		writeSeed(t, "FuzzDecodeBinaryDatagram", "client-http-body", first)
		writeSeed(t, "FuzzDecodeBinaryDatagram", "emitbatch-binary", emitBatchMessage(t, testBatch(), false))
		writeSeed(t, "FuzzDecodeCompactDatagram", "emitbatch-compact", emitBatchMessage(t, testBatch(), true))
	}
}

// writeSeed writes b as a seed in the "go test fuzz v1" format.
func writeSeed(t *testing.T, target, name string, b []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
