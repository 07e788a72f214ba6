package sdk

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// TestPropagationAndLogs sends a request carrying a Jaeger uber-trace-id
// to a service on the SDK, which logs and calls a backend through
// HTTPTransport: the log line and the backend's headers (both formats)
// carry the caller's trace id, and the shipped log lines reach the logs
// API with it.
func TestPropagationAndLogs(t *testing.T) {
	sk := newSink(t)
	var logs syncBuffer
	shutdown, err := Init(Config{Service: "front", Grade: 2, Env: "test", Version: "v9", Collector: sk.srv.URL,
		ShipLogs: true, LogsFlushInterval: 20 * time.Millisecond, LogOutput: &logs, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan http.Header, 4)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer backend.Close()
	client := &http.Client{Transport: HTTPTransport(nil)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
		Logger().WithGroup("req").InfoContext(r.Context(), "calling backend", "n", 1)
		req, _ := http.NewRequestWithContext(r.Context(), "GET", backend.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})
	srv := httptest.NewServer(HTTPMiddleware(mux))
	defer srv.Close()

	f := func(header, value, wantTrace, callerSpan string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/call", nil)
		req.Header.Set(header, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h := <-got
		tp := strings.Split(h.Get("traceparent"), "-")
		if len(tp) != 4 || tp[1] != wantTrace || tp[2] == callerSpan || tp[3] != "01" {
			t.Errorf("%s %s: backend got traceparent %q; want trace %s, a new span, sampled", header, value, h.Get("traceparent"), wantTrace)
		}
		if u := h.Get("uber-trace-id"); !strings.HasPrefix(u, wantTrace+":") || (len(tp) == 4 && !strings.HasPrefix(u, wantTrace+":"+tp[2]+":")) {
			t.Errorf("%s %s: backend got uber-trace-id %q; want trace %s and the traceparent's span", header, value, u, wantTrace)
		}
	}
	f("uber-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
	f("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
	// A 64-bit Jaeger trace id is read as the low half of a 128-bit one.
	f("uber-trace-id", "a3ce929d0e0e4736:00f067aa0ba902b7:0:1", "0000000000000000a3ce929d0e0e4736", "00f067aa0ba902b7")

	// A sampled request left its trace id as the duration's exemplar
	// (one a second per series).
	mfs, err := Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exemplars []string
	for _, mf := range mfs {
		if mf.GetName() != "vigil_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.Metric {
			for _, b := range m.GetHistogram().Bucket {
				for _, l := range b.GetExemplar().GetLabel() {
					exemplars = append(exemplars, l.GetName()+"="+l.GetValue())
				}
			}
		}
	}
	sent := "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 trace_id=0af7651916cd43dd8448eb211c80319c trace_id=0000000000000000a3ce929d0e0e4736"
	if len(exemplars) == 0 || len(exemplars) > 3 {
		t.Errorf("exemplars %v; want the trace id of a request (one a second)", exemplars)
	}
	for _, e := range exemplars {
		if !strings.Contains(sent, e) {
			t.Errorf("exemplar %s is none of the requests' traces", e)
		}
	}

	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	var lines []map[string]any
	for _, l := range logs.lines(t) {
		if l["msg"] == "calling backend" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("got %d log lines of the handler; want 3: %v", len(lines), lines)
	}
	l := lines[0]
	if l["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || len(l["span_id"].(string)) != 16 || l["service"] != "front" ||
		l["grade"] != 2.0 || l["env"] != "test" || l["version"] != "v9" || l["level"] != "INFO" {
		t.Errorf("log line %v; want the trace id, a span id, service, grade, env, version at the top level", l)
	}
	if req, _ := l["req"].(map[string]any); req["n"] != 1.0 {
		t.Errorf("log line %v; want the attribute n in group req", l)
	}

	// Shipped lines have the logs API's shape.
	var shipped []map[string]any
	for _, s := range sk.shipped() {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("shipped line %q: %v", s, err)
		}
		if m["message"] == "calling backend" {
			shipped = append(shipped, m)
		}
	}
	if len(shipped) != 3 {
		t.Fatalf("shipped %d lines of the handler; want 3: %v", len(shipped), sk.shipped())
	}
	ts, _ := shipped[0]["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || shipped[0]["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || shipped[0]["service"] != "front" {
		t.Errorf("shipped line %v; want message, an RFC 3339 timestamp, service and trace_id", shipped[0])
	}
}

func TestLogHandlerWithoutSpan(t *testing.T) {
	logs := initTest(t, Config{TracesDisabled: true, LogLevel: Level(slog.LevelWarn)})
	Logger().Info("dropped below the level")
	Logger().With("a", "b").WithGroup("g").Warn("kept", "x", 1)
	ls := logs.lines(t)
	if len(ls) != 1 || ls[0]["msg"] != "kept" || ls[0]["a"] != "b" || ls[0]["trace_id"] != nil {
		t.Fatalf("got %v; want one line, with a=b and no trace id", ls)
	}
	if g, _ := ls[0]["g"].(map[string]any); g["x"] != 1.0 {
		t.Errorf("got %v; want x in group g", ls[0])
	}
	// The context's span is used even when it comes from elsewhere.
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	Logger().WarnContext(trace.ContextWithSpanContext(context.Background(), sc), "with span")
	ls = logs.lines(t)
	if l := ls[len(ls)-1]; l["trace_id"] != "01000000000000000000000000000000" || l["span_id"] != "0200000000000000" {
		t.Errorf("got %v; want the context's trace and span ids", l)
	}
}
