package dump_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/sdk/dump"
)

type traceKey struct{}

func newReporter(t *testing.T, rc *receiver, spool string, mod func(*dump.Options)) *dump.Reporter {
	t.Helper()
	o := dump.Options{
		DSN: rc.DSN(), SpoolDir: spool,
		Service: "shop", Grade: 1, Env: "prod", Version: "v2.0.1", ServerName: "web-7",
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		TraceContext: func(ctx context.Context) (string, string) {
			if ids, ok := ctx.Value(traceKey{}).([2]string); ok {
				return ids[0], ids[1]
			}
			return "", ""
		},
		RedactHeaders: []string{"X-Session"},
		Logger:        slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	if mod != nil {
		mod(&o)
	}
	rep, err := dump.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	return rep
}

func flush(t *testing.T, rep *dump.Reporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// recoverer is what the SDK's middleware does with a Reporter.
func recoverer(rep *dump.Reporter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				rep.Recovered(r.Context(), v, nil, r)
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

//go:noinline
func itemHandler(w http.ResponseWriter, r *http.Request) {
	items := []string{"a", "b"}
	idx := len(r.PathValue("id")) + 5
	w.Write([]byte(items[idx]))
}

// A panic in a handler becomes one event with everything the issue asks:
// type and value, in-app frames, every goroutine, the request without its
// secrets, the service's tags, the trace, release, Go and module versions.
func TestRecoveredInHandler(t *testing.T) {
	rc := newReceiver(t)
	rep := newReporter(t, rc, t.TempDir(), nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", itemHandler)
	srv := recoverer(rep, mux)

	// A goroutine parked elsewhere must show up as a thread.
	stop := make(chan struct{})
	go parkedWorker2(stop)
	waitParked("parkedWorker2", "[select")
	defer close(stop)

	req := httptest.NewRequest("GET", "http://shop.example/items/42?token=s3cret&page=2", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Cookie", "session=s3cret")
	req.Header.Set("X-Session", "s3cret")
	req.Header.Set("X-Request-Id", "r-1")
	req = req.WithContext(context.WithValue(req.Context(), traceKey{}, [2]string{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"}))
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	flush(t, rep)

	events, _ := rc.Snapshot()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	for _, ev := range events {
		raw := toJSON(t, ev)
		if strings.Contains(raw, "s3cret") {
			t.Errorf("a secret leaked into the event: %s", raw)
		}
		exc := path(ev, "exception", "values", -1)
		f := func(got, want any, what string) {
			t.Helper()
			if got != want {
				t.Errorf("%s: got %v, want %v", what, got, want)
			}
		}
		f(path(exc, "type"), "runtime.boundsError", "exception type")
		f(path(exc, "value"), "runtime error: index out of range [7] with length 2", "exception value")
		f(path(exc, "mechanism", "type"), "panic", "mechanism")
		f(path(exc, "mechanism", "handled"), false, "handled")
		f(lastInApp(path(exc, "stacktrace", "frames")), "itemHandler", "newest in-app frame")
		f(path(exc, "stacktrace", "frames", -1, "module"), "github.com/vigilhq/vigil/sdk/dump_test", "newest frame's module")
		if fn, _ := path(exc, "stacktrace", "frames", -1, "function").(string); fn != "itemHandler" {
			t.Errorf("newest frame %q: want the handler, the recovery frames cut off", fn)
		}
		f(ev["level"], "error", "level")
		f(ev["platform"], "go", "platform")
		f(ev["release"], "v2.0.1", "release")
		f(ev["environment"], "prod", "environment")
		f(ev["server_name"], "web-7", "server_name")
		f(ev["transaction"], "GET /items/{id}", "transaction")
		for k, v := range map[string]string{"service": "shop", "grade": "1", "env": "prod", "version": "v2.0.1", "host": "web-7", "route": "GET /items/{id}"} {
			f(path(ev, "tags", k), v, "tag "+k)
		}
		f(path(ev, "contexts", "trace", "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736", "trace id")
		f(path(ev, "contexts", "trace", "span_id"), "00f067aa0ba902b7", "span id")
		if v, _ := path(ev, "contexts", "runtime", "version").(string); !strings.HasPrefix(v, "go") {
			t.Errorf("Go version: got %q", v)
		}
		// A test binary's build info lists the main module only.
		if path(ev, "modules", "github.com/vigilhq/vigil/sdk") == nil {
			t.Errorf("modules: got %v, want the build info's modules", path(ev, "modules"))
		}
		f(path(ev, "request", "method"), "GET", "method")
		f(path(ev, "request", "url"), "http://shop.example/items/42", "url")
		f(path(ev, "request", "query_string"), "token=[Filtered]&page=2", "query string")
		for h, want := range map[string]string{"Authorization": "[Filtered]", "Cookie": "[Filtered]", "X-Session": "[Filtered]", "X-Request-Id": "r-1"} {
			f(path(ev, "request", "headers", h), want, "header "+h)
		}
		threads, _ := path(ev, "threads", "values").([]any)
		var crashed, parked int
		for _, th := range threads {
			if path(th, "crashed") == true {
				crashed++
				f(path(th, "current"), true, "crashed thread is current")
				f(lastInApp(path(th, "stacktrace", "frames")), "itemHandler", "crashed thread's top in-app frame")
				f(path(th, "id"), toJSON(t, path(exc, "thread_id")), "crashed thread id = exception thread_id")
			}
			if lastInApp(path(th, "stacktrace", "frames")) == "parkedWorker2" {
				parked++
				f(path(th, "state"), "select", "parked goroutine's state")
			}
		}
		if crashed != 1 || parked != 1 {
			t.Errorf("threads: %d crashed, %d parked of %d; want 1 and 1", crashed, parked, len(threads))
		}
	}
}

func parkedWorker2(stop <-chan struct{}) {
	select {
	case <-stop:
	case <-time.After(time.Hour):
	}
}

// A panic with a wrapped error is reported as its chain, the raised
// error last.
func TestRecoveredErrorChain(t *testing.T) {
	rc := newReceiver(t)
	rep := newReporter(t, rc, t.TempDir(), nil)
	func() {
		defer func() { rep.Recovered(context.Background(), recover(), nil, nil) }()
		goroutinePanics()
	}()
	flush(t, rep)
	events, _ := rc.Snapshot()
	for _, ev := range events {
		got := toJSON(t, []any{path(ev, "exception", "values", 0, "type"), path(ev, "exception", "values", 0, "value"),
			path(ev, "exception", "values", 1, "type"), path(ev, "exception", "values", 1, "value")})
		want := `["*errors.errorString","disk on fire","*fmt.wrapError","flush cart: disk on fire"]`
		if got != want {
			t.Errorf("exceptions: got %s, want %s", got, want)
		}
		if lastInApp(path(ev, "exception", "values", 1, "stacktrace", "frames")) != "goroutinePanics" {
			t.Errorf("the raised error's frames: got %v", path(ev, "exception", "values", 1, "stacktrace"))
		}
	}
	if len(events) != 1 {
		t.Errorf("got %d events, want 1", len(events))
	}
}

// Capture names what was served without an HTTP request (a gRPC method)
// and adds tags; no panic, http.ErrAbortHandler and a nil Reporter report
// nothing.
func TestCapture(t *testing.T) {
	rc := newReceiver(t)
	rep := newReporter(t, rc, t.TempDir(), nil)
	id := func() (id string) {
		defer func() {
			id = rep.Capture(context.Background(), dump.Report{Value: recover(), Transaction: "/shop.Cart/Add",
				Tags: map[string]string{"rpc.system": "grpc", "service": "not-this"}})
		}()
		panic("out of stock")
	}()
	for _, v := range []any{nil, http.ErrAbortHandler} {
		if got := rep.Recovered(context.Background(), v, nil, nil); got != "" {
			t.Errorf("Recovered(%v): got event %q, want none", v, got)
		}
	}
	var none *dump.Reporter
	if got := none.Recovered(context.Background(), "x", nil, nil); got != "" || none.Flush(context.Background()) != nil || none.Close() != nil {
		t.Errorf("nil Reporter: got event %q, want nothing done", got)
	}
	flush(t, rep)
	events, _ := rc.Snapshot()
	ev := events[id]
	if len(events) != 1 || ev == nil {
		t.Fatalf("got %d events, want 1 with id %s", len(events), id)
	}
	if ev["transaction"] != "/shop.Cart/Add" {
		t.Errorf("transaction: got %v, want /shop.Cart/Add", ev["transaction"])
	}
	for k, want := range map[string]string{"route": "/shop.Cart/Add", "rpc.system": "grpc", "service": "shop"} {
		if got := path(ev, "tags", k); got != want {
			t.Errorf("tag %s: got %v, want %v", k, got, want)
		}
	}
	if got := toJSON(t, path(ev, "exception", "values", -1, "type")) + toJSON(t, path(ev, "exception", "values", -1, "value")); got != `"string""out of stock"` {
		t.Errorf("exception: got %s, want string: out of stock", got)
	}
}
