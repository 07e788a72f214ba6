package sdktest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/sdk"
)

//go:noinline
func chargeCard(w http.ResponseWriter, r *http.Request) { panic("card declined: " + r.PathValue("id")) }

//go:noinline
//lint:ignore SA5000 the panic is the point: the dump tests catch it
func reconcile() { var m map[string]int; m["x"]++ }

// A service on the SDK panics in a handler and in a goroutine while the
// collector's dumps intake is down: the reports wait in the SDK's spool
// and reach the collector's dumps queue once it is up, each once, with
// the service's identity, its frames, its goroutines and its trace.
func TestPanicDumpsReachTheCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the intake is down

	shutdown, err := sdk.Init(sdk.Config{
		Service: "payments", Grade: 1, Env: "test", Version: "v3.0.0", TracesDisabled: true, NoGlobals: true,
		LogOutput: &lockedBuffer{}, DumpsDSN: "http://sdk-key@" + addr + "/7", DumpsSpoolDir: t.TempDir(),
		DumpsInApp: []string{"github.com/vigilhq/vigil/collector/sdktest"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /charges/{id}", chargeCard)
	srv := httptest.NewServer(sdk.HTTPMiddleware(mux))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/charges/c-1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xfe, 9}, SpanID: trace.SpanID{3}, TraceFlags: trace.FlagsSampled})
	done := make(chan struct{})
	sdk.GoContext(trace.ContextWithSpanContext(context.Background(), sc), func(context.Context) {
		defer close(done)
		reconcile()
	})
	<-done

	dumps := openQueue(t)
	o := collector.DefaultOptions()
	o.Listen = collector.Addrs{Dumps: addr}
	o.Dumps.Keys = []string{"sdk-key/7"}
	runCollector(t, o, collector.Queues{Logs: openQueue(t), Dumps: dumps})
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown with the intake back: %v", err)
	}

	got := drain(t, dumps, func(out []model.Dump, b []byte) ([]model.Dump, error) {
		var d model.Dump
		err := json.Unmarshal(b, &d)
		return append(out, d), err
	})
	if len(got) != 2 {
		t.Fatalf("%d dumps on the queue; want 2", len(got))
	}
	byTop := map[string]model.Dump{}
	for _, d := range got {
		if d.Service != "payments" || d.Grade != 1 || d.Project != "7" || d.Release != "v3.0.0" || d.Environment != "test" || d.Level != "error" {
			t.Errorf("dump %s: service %q grade %d project %q release %q env %q level %q; want the service's identity", d.EventID, d.Service, d.Grade, d.Project, d.Release, d.Environment, d.Level)
		}
		if len(d.Threads) < 2 {
			t.Errorf("dump %s: %d threads; want every goroutine", d.EventID, len(d.Threads))
		}
		exc := d.Exceptions[len(d.Exceptions)-1]
		byTop[topInApp(exc.Frames)] = d
	}
	if d, ok := byTop["chargeCard"]; !ok || d.Transaction != "POST /charges/{id}" || d.Exceptions[0].Value != "card declined: c-1" || d.Request == nil || d.Request.Method != "POST" {
		t.Errorf("handler's dump %+v; want its route, value and request", d)
	}
	if d, ok := byTop["reconcile"]; !ok || d.TraceID != sc.TraceID().String() || d.Exceptions[0].Value != "assignment to entry in nil map" {
		t.Errorf("goroutine's dump %+v; want its trace and the runtime error", d)
	}
}

// topInApp is the function of the newest in-app frame.
func topInApp(frames []model.Frame) string {
	for i := len(frames) - 1; i >= 0; i-- {
		if frames[i].InApp {
			return frames[i].Function
		}
	}
	return ""
}
