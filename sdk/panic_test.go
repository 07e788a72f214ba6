package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// waitLine waits for a log line with msg and returns it.
func waitLine(t *testing.T, logs *syncBuffer, msg string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, l := range logs.lines(t) {
			if l["msg"] == msg {
				return l
			}
		}
	}
	t.Fatalf("no log line %q", msg)
	return nil
}

func TestPanicInHandler(t *testing.T) {
	sk := newSink(t)
	logs := initTest(t, Config{Collector: sk.srv.URL})
	srv := httptest.NewServer(testService())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/boom", nil)
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("GET /boom: got %d %q; want 500", resp.StatusCode, body)
	}
	l := waitLine(t, logs, "panic recovered")
	if l["panic"] != "boom" || l["route"] != "/boom" || l["method"] != "GET" || l["level"] != "ERROR" ||
		l["trace_id"] != "0af7651916cd43dd8448eb211c80319c" || !strings.Contains(l["stack"].(string), "sdk.testService.func") || !strings.Contains(l["stack"].(string), "metrics_test.go") {
		t.Errorf("got %v; want the panic value, route, trace id and the stack down to the handler", l)
	}
	// The server survived.
	resp, err = http.Get(srv.URL + "/users/7")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /users/7 after the panic: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestPanicInGoroutine(t *testing.T) {
	logs := initTest(t, Config{TracesDisabled: true})
	//lint:ignore SA5000 the nil map is the panic under test
	Go(func() { var m map[string]int; m["x"]++ })
	l := waitLine(t, logs, "panic recovered")
	if !strings.Contains(l["panic"].(string), "assignment to entry in nil map") || !strings.Contains(l["stack"].(string), "TestPanicInGoroutine") {
		t.Errorf("got %v; want the runtime error and its stack", l)
	}
	if got := testutil.ToFloat64(current.Load().m.panics.WithLabelValues("goroutine")); got != 1 {
		t.Errorf("vigil_sdk_panics_total{where=goroutine}: got %v; want 1", got)
	}
}

func TestRepanic(t *testing.T) {
	logs := initTest(t, Config{TracesDisabled: true, Repanic: true})
	h := testService()
	got := func() (v any) {
		defer func() { v = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom", nil))
		return nil
	}()
	if got != "boom" {
		t.Errorf("with Repanic the middleware let through %v; want the panic boom", got)
	}
	waitLine(t, logs, "panic recovered")
	if got := testutil.ToFloat64(current.Load().m.httpRequests.WithLabelValues("/boom", "GET", "500")); got != 1 {
		t.Errorf("requests counted as 500: got %v; want 1", got)
	}
}

// http.ErrAbortHandler is how a handler aborts a response on purpose: it
// goes through unreported, as net/http expects.
func TestAbortHandlerIsNotReported(t *testing.T) {
	logs := initTest(t, Config{TracesDisabled: true})
	h := HTTPMiddleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	got := func() (v any) {
		defer func() { v = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		return nil
	}()
	if err, _ := got.(error); !errors.Is(err, http.ErrAbortHandler) {
		t.Errorf("got %v; want http.ErrAbortHandler to go through", got)
	}
	for _, l := range logs.lines(t) {
		if l["msg"] == "panic recovered" {
			t.Errorf("ErrAbortHandler was reported: %v", l)
		}
	}
}

func TestGoContextCarriesTrace(t *testing.T) {
	sk := newSink(t)
	logs := initTest(t, Config{Collector: sk.srv.URL})
	ctx, span := current.Load().tracer.Start(context.Background(), "job")
	defer span.End()
	GoContext(ctx, func(ctx context.Context) { panic(errors.New("job failed")) })
	l := waitLine(t, logs, "panic recovered")
	if l["trace_id"] != span.SpanContext().TraceID().String() || l["panic"] != "job failed" {
		t.Errorf("got %v; want the job's trace id and the error", l)
	}
}
