package sdk_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/sdk"
	"github.com/vigilhq/vigil/sdk/dump/dumptest"
)

// The tests of this file are a service built on sdk.Init, in its own
// package so that its frames are the application's (DumpsInApp), and
// reporting to dumptest's intake.

// envCrash makes the test binary a service that dies of a fatal error
// (crashChild); the rest of its configuration comes from VIGIL_….
const envCrash = "VIGIL_SDK_TEST_CRASH"

const testPkg = "github.com/vigilhq/vigil/sdk_test"

func TestMain(m *testing.M) {
	if os.Getenv(envCrash) != "" {
		crashChild()
		return
	}
	goleak.VerifyTestMain(m)
}

// startService runs sdk.Init for one test: traces to a stand-in
// collector, panic reports to dsn through spool. It returns the log
// output and the shutdown, also called at the end of the test.
func startService(t *testing.T, dsn, spool string) (*sdk.LogBuffer, func(context.Context) error) {
	t.Helper()
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(collector.Close)
	var logs sdk.LogBuffer
	shutdown, err := sdk.Init(sdk.Config{
		Service: "shop", Grade: 2, Env: "test", Version: "v1.4.2", Host: "h1",
		Collector: collector.URL, DumpsDSN: dsn, DumpsSpoolDir: spool, DumpsInApp: []string{testPkg},
		LogOutput: &logs, NoGlobals: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = shutdown(context.Background()) }) })
	return &logs, func(ctx context.Context) (err error) {
		once.Do(func() { err = shutdown(ctx) })
		return err
	}
}

type outOfStock struct{ sku string }

func (e *outOfStock) Error() string { return "out of stock: " + e.sku }

func shopMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", itemHandler)
	return mux
}

func itemHandler(w http.ResponseWriter, r *http.Request) { reserveItem(r.PathValue("id")) }

//go:noinline
func reserveItem(sku string) { panic(&outOfStock{sku: sku}) }

// parkedWorker is a goroutine every report must show beside the
// panicking one.
func parkedWorker(stop chan struct{}) { <-stop }

func startParked(t *testing.T) {
	stop := make(chan struct{})
	go parkedWorker(stop)
	t.Cleanup(func() { close(stop) })
	waitParked("parkedWorker")
}

// waitParked waits until a goroutine running fn is blocked.
func waitParked(fn string) {
	buf := make([]byte, 1<<20)
	for {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "[chan receive") && strings.Contains(g, "."+fn+"(") {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// checkEvent checks what every report of the service carries, and that
// the newest in-app frame of the exception is top.
func checkEvent(t *testing.T, ev map[string]any, wantType, wantValue, top string) {
	t.Helper()
	p := dumptest.Path
	exc := p(ev, "exception", "values", -1)
	if p(exc, "type") != wantType || p(exc, "value") != wantValue {
		t.Errorf("exception %v: %v; want %s: %s", p(exc, "type"), p(exc, "value"), wantType, wantValue)
	}
	if got := dumptest.LastInApp(p(exc, "stacktrace", "frames")); got != top {
		t.Errorf("newest in-app frame %q; want %q", got, top)
	}
	for k, want := range map[string]string{"service": "shop", "grade": "2", "env": "test", "version": "v1.4.2", "host": "h1"} {
		if got := p(ev, "tags", k); got != want {
			t.Errorf("tag %s = %v; want %s", k, got, want)
		}
	}
	if ev["release"] != "v1.4.2" || ev["environment"] != "test" || ev["server_name"] != "h1" {
		t.Errorf("release %v, environment %v, server_name %v; want v1.4.2, test, h1", ev["release"], ev["environment"], ev["server_name"])
	}
	threads, _ := p(ev, "threads", "values").([]any)
	var crashed, parked int
	for _, th := range threads {
		if p(th, "crashed") == true {
			crashed++
		}
		if dumptest.LastInApp(p(th, "stacktrace", "frames")) == "parkedWorker" {
			parked++
		}
	}
	if crashed != 1 || parked != 1 {
		t.Errorf("%d threads, %d crashed, %d in parkedWorker; want every goroutine, one crashed, one parked", len(threads), crashed, parked)
	}
}

// A panic in a handler is one event: the error, the handler's frames, every
// goroutine, the request (secrets filtered), its route and trace.
func TestDumpOfPanicInHandler(t *testing.T) {
	rc := dumptest.NewReceiver(t)
	logs, shutdown := startService(t, rc.DSN(), t.TempDir())
	startParked(t)
	srv := httptest.NewServer(sdk.HTTPMiddleware(shopMux()))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/items/sku-7?color=red", nil)
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("status %d; want 500", resp.StatusCode)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	events, _ := rc.Snapshot()
	if len(events) != 1 {
		t.Fatalf("%d events; want 1", len(events))
	}
	p := dumptest.Path
	for id, ev := range events {
		checkEvent(t, ev, "*sdk_test.outOfStock", "out of stock: sku-7", "reserveItem")
		if got := p(ev, "contexts", "trace", "trace_id"); got != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("trace id %v; want the request's", got)
		}
		if ev["transaction"] != "GET /items/{id}" || p(ev, "tags", "route") != "GET /items/{id}" || p(ev, "tags", "recovered_in") != "http" {
			t.Errorf("transaction %v, tags %v; want the route pattern and recovered_in=http", ev["transaction"], ev["tags"])
		}
		if p(ev, "request", "method") != "GET" || p(ev, "request", "query_string") != "color=red" || p(ev, "request", "headers", "Authorization") != "[Filtered]" {
			t.Errorf("request %v; want the method, query and a filtered Authorization", ev["request"])
		}
		if !strings.Contains(logs.String(), `"event_id":"`+id+`"`) {
			t.Errorf("no log line names event %s:\n%s", id, logs.String())
		}
	}
}

//go:noinline
func refreshCache(m map[string]int) { m["hits"]++ }

// A panic in a goroutine started with sdk.GoContext is one event, on the
// trace of the context it was started with.
func TestDumpOfPanicInGo(t *testing.T) {
	rc := dumptest.NewReceiver(t)
	_, shutdown := startService(t, rc.DSN(), t.TempDir())
	startParked(t)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	done := make(chan struct{})
	sdk.GoContext(ctx, func(context.Context) {
		defer close(done)
		var m map[string]int
		refreshCache(m)
	})
	<-done
	rc.WaitEvents(1, 20*time.Second)
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	events, _ := rc.Snapshot()
	if len(events) != 1 {
		t.Fatalf("%d events; want 1", len(events))
	}
	for _, ev := range events {
		checkEvent(t, ev, "runtime.plainError", "assignment to entry in nil map", "refreshCache")
		if got := dumptest.Path(ev, "contexts", "trace", "trace_id"); got != sc.TraceID().String() {
			t.Errorf("trace id %v; want the context's %s", got, sc.TraceID())
		}
		if got := dumptest.Path(ev, "tags", "recovered_in"); got != "goroutine" {
			t.Errorf("tag recovered_in = %v; want goroutine", got)
		}
	}
}

// Without a DSN, Init says once that panics are only logged, and a panic
// is logged with its stack.
func TestDumpsOff(t *testing.T) {
	logs, _ := startService(t, "", "")
	srv := httptest.NewServer(sdk.HTTPMiddleware(shopMux()))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/items/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := logs.String()
	if n := strings.Count(out, "panic dumps are off"); n != 1 {
		t.Errorf("%d lines say dumps are off; want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `"msg":"panic recovered"`) || !strings.Contains(out, "sdk_test.reserveItem") || strings.Contains(out, "event_id") {
		t.Errorf("want the panic logged with its stack, and no event id:\n%s", out)
	}
}
