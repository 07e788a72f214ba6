//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opentracing/opentracing-go"
	"github.com/opentracing/opentracing-go/ext"
	jaegerclient "github.com/uber/jaeger-client-go"

	"github.com/vigilhq/vigil/sdk"
)

// TestSDKService runs a service on the Go SDK against vigil all-in-one: a
// request to it calls a jaeger-client-go service (reporting over UDP) with
// the SDK's trace headers. The trace is queryable through the Jaeger API
// with the SDK's server and client spans and the Jaeger span as the
// client's child, and the log line the handler wrote is found by LogQL
// with its trace id.
func TestSDKService(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	shutdown, err := sdk.Init(sdk.Config{Service: "sdk-front", Grade: 1, Env: "e2e", Collector: p.collector,
		ShipLogs: true, LogsFlushInterval: 50 * time.Millisecond, LogOutput: io.Discard, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())

	udp, err := jaegerclient.NewUDPTransport(p.jaegerCompact, 0)
	if err != nil {
		t.Fatal(err)
	}
	tracer, closer := jaegerclient.NewTracer("sdk-legacy", jaegerclient.NewConstSampler(true), jaegerclient.NewRemoteReporter(udp))
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parent, err := tracer.Extract(opentracing.HTTPHeaders, opentracing.HTTPHeadersCarrier(r.Header))
		if err != nil {
			t.Errorf("jaeger-client-go cannot read %v: %v", r.Header, err)
		}
		tracer.StartSpan("legacy-work", ext.RPCServerOption(parent)).Finish()
	}))
	defer legacy.Close()
	client := &http.Client{Transport: sdk.HTTPTransport(nil)}
	defer client.CloseIdleConnections()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /carts/{id}", func(w http.ResponseWriter, r *http.Request) {
		sdk.Logger().InfoContext(r.Context(), "cart served", "cart", r.PathValue("id"))
		req, _ := http.NewRequestWithContext(r.Context(), "GET", legacy.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})
	front := httptest.NewServer(sdk.HTTPMiddleware(mux))
	defer front.Close()

	req, _ := http.NewRequest("GET", front.URL+"/carts/5", nil)
	const traceID = "5af7183fb1d4cf5f5af7183fb1d4cf5f"
	req.Header.Set("traceparent", "00-"+traceID+"-6b221d5bc9e6496c-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	closer.Close()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	tr := p.getTrace(traceID, 3)
	byName := map[string]int{}
	for i, s := range tr.Spans {
		byName[tr.Processes[s.ProcessID].ServiceName+" "+s.OperationName] = i
	}
	parentOf := func(name string) string {
		i, ok := byName[name]
		if !ok {
			t.Fatalf("no span %q in %v", name, byName)
		}
		for _, r := range tr.Spans[i].References {
			if r.RefType == "CHILD_OF" {
				return r.SpanID
			}
		}
		return ""
	}
	server, clientSpan := byName["sdk-front GET /carts/{id}"], byName["sdk-front GET"]
	if got := parentOf("sdk-front GET /carts/{id}"); got != "6b221d5bc9e6496c" {
		t.Errorf("the SDK's server span has parent %q; want the caller's 6b221d5bc9e6496c", got)
	}
	if got := parentOf("sdk-front GET"); got != tr.Spans[server].SpanID {
		t.Errorf("the SDK's client span has parent %q; want its server span %s", got, tr.Spans[server].SpanID)
	}
	if got := parentOf("sdk-legacy legacy-work"); got != tr.Spans[clientSpan].SpanID {
		t.Errorf("the jaeger-client-go span has parent %q; want the SDK's client span %s", got, tr.Spans[clientSpan].SpanID)
	}

	q := `{service="sdk-front"} | trace_id="` + traceID + `"`
	eventually(t, 20*time.Second, "the handler's log line queryable by trace id", func() (bool, string) {
		ss := p.streams(q, 10)
		for _, s := range ss {
			for _, v := range s.Values {
				if strings.Contains(v[1], "cart served") && s.Stream["span_id"] == tr.Spans[server].SpanID {
					return true, ""
				}
			}
		}
		return false, "streams: " + toString(ss)
	})
}

func toString(ss []lokiStream) string {
	var b strings.Builder
	for _, s := range ss {
		for k, v := range s.Stream {
			b.WriteString(k + "=" + v + " ")
		}
		for _, v := range s.Values {
			b.WriteString(v[1] + "; ")
		}
	}
	return b.String()
}
