//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opentracing/opentracing-go"
	"github.com/opentracing/opentracing-go/ext"
	jaegerclient "github.com/uber/jaeger-client-go"
	"github.com/uber/jaeger-client-go/transport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// jaegerTrace is the part of Jaeger's trace JSON the tests check.
type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime int64 `json:"startTime"`
		Duration  int64 `json:"duration"`
		Tags      []struct {
			Key   string `json:"key"`
			Type  string `json:"type"`
			Value any    `json:"value"`
		} `json:"tags"`
		ProcessID string `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
		Tags        []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"processes"`
}

// getTrace polls /api/traces/{id} until the trace has want spans.
func (p *proc) getTrace(id string, want int) jaegerTrace {
	p.t.Helper()
	var tr jaegerTrace
	eventually(p.t, 20*time.Second, "trace "+id+" queryable", func() (bool, string) {
		code, body, _ := p.get("/api/traces/" + id)
		if code != 200 {
			return false, fmt.Sprintf("%d %s", code, body)
		}
		var r struct{ Data []jaegerTrace }
		if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Data) != 1 {
			return false, body
		}
		tr = r.Data[0]
		return len(tr.Spans) == want, fmt.Sprintf("%d spans", len(tr.Spans))
	})
	return tr
}

func tagOf(tr jaegerTrace, span int, key string) (string, any) {
	for _, tg := range tr.Spans[span].Tags {
		if tg.Key == key {
			return tg.Type, tg.Value
		}
	}
	return "", nil
}

// checkOTelTrace compares what the Jaeger API returns with the spans the
// OpenTelemetry SDK recorded: ids, parents, times to the microsecond, typed
// tags and the resource.
func checkOTelTrace(t *testing.T, p *proc, rec *tracetest.SpanRecorder, service string) {
	t.Helper()
	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("SDK recorded %d spans; want 2", len(ended))
	}
	tr := p.getTrace(ended[0].SpanContext().TraceID().String(), 2)
	byID := map[string]int{}
	for i, s := range tr.Spans {
		byID[s.SpanID] = i
	}
	for _, s := range ended {
		i, ok := byID[s.SpanContext().SpanID().String()]
		if !ok {
			t.Fatalf("span %s missing from %+v", s.Name(), tr)
		}
		got := tr.Spans[i]
		if got.OperationName != s.Name() || got.StartTime != s.StartTime().UnixMicro() || got.Duration != s.EndTime().Sub(s.StartTime()).Microseconds() {
			t.Errorf("span %s: got %s start %d duration %d; want start %d duration %d", s.Name(), got.OperationName, got.StartTime, got.Duration,
				s.StartTime().UnixMicro(), s.EndTime().Sub(s.StartTime()).Microseconds())
		}
		if s.Parent().IsValid() {
			if len(got.References) == 0 || got.References[0].RefType != "CHILD_OF" || got.References[0].SpanID != s.Parent().SpanID().String() {
				t.Errorf("span %s: references %+v; want CHILD_OF %s", s.Name(), got.References, s.Parent().SpanID())
			}
		}
		if proc := tr.Processes[got.ProcessID]; proc.ServiceName != service {
			t.Errorf("span %s: process %+v; want service %s", s.Name(), proc, service)
		}
	}
	root := byID[ended[1].SpanContext().SpanID().String()]
	for key, want := range map[string]string{"http.route": "string", "retry": "bool", "items": "int64", "ratio": "float64"} {
		if typ, _ := tagOf(tr, root, key); typ != want {
			t.Errorf("tag %s: got type %q; want %q", key, typ, want)
		}
	}
	if _, v := tagOf(tr, root, "items"); fmt.Sprint(v) != "3" {
		t.Errorf("tag items: got %v; want 3", v)
	}
	found := false
	for _, tg := range tr.Processes[tr.Spans[root].ProcessID].Tags {
		found = found || (tg.Key == "team" && tg.Value == "payments")
	}
	if !found {
		t.Errorf("resource attribute team=payments missing from the process: %+v", tr.Processes)
	}
}

func otelTrace(t *testing.T, exp sdktrace.SpanExporter, service string) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	res := resource.NewSchemaless(attribute.String("service.name", service), attribute.String("team", "payments"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(rec), sdktrace.WithBatcher(exp))
	ctx, root := tp.Tracer("e2e").Start(context.Background(), "POST /pay", trace.WithSpanKind(trace.SpanKindServer))
	root.SetAttributes(attribute.String("http.route", "/pay"), attribute.Bool("retry", true), attribute.Int("items", 3), attribute.Float64("ratio", 0.5))
	_, child := tp.Tracer("e2e").Start(ctx, "charge card", trace.WithSpanKind(trace.SpanKindClient))
	time.Sleep(2 * time.Millisecond)
	child.End()
	root.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("OpenTelemetry SDK could not export: %v", err)
	}
	return rec
}

// TestTracesFromRealClients sends traces with the OpenTelemetry Go SDK over
// OTLP/HTTP and OTLP/gRPC, jaeger-client-go over UDP and HTTP, and a Zipkin
// v2 payload, and reads each back through Jaeger's query API.
func TestTracesFromRealClients(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	checkRealClients(t, p)
	checkZipkinSharedSpan(t, p)
}

// checkRealClients sends traces from each real client to p's receivers and
// reads them back through p's Jaeger API, with searches.
func checkRealClients(t *testing.T, p *proc) {
	ctx := context.Background()

	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(p.collector), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	checkOTelTrace(t, p, otelTrace(t, httpExp, "otel-http"), "otel-http")

	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.otlpGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	checkOTelTrace(t, p, otelTrace(t, grpcExp, "otel-grpc"), "otel-grpc")

	// jaeger-client-go, over UDP (compact thrift) and HTTP (binary thrift).
	udp, err := jaegerclient.NewUDPTransport(p.jaegerCompact, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		service string
		sender  jaegerclient.Transport
	}{{"jaeger-udp", udp}, {"jaeger-http", transport.NewHTTPTransport("http://" + p.jaegerHTTP + "/api/traces")}} {
		tracer, closer := jaegerclient.NewTracer(c.service, jaegerclient.NewConstSampler(true), jaegerclient.NewRemoteReporter(c.sender))
		start := time.Now().Truncate(time.Microsecond)
		root := tracer.StartSpan("GET /cart", ext.SpanKindRPCServer, opentracing.StartTime(start))
		root.SetTag("http.status_code", 200)
		root.SetTag("cached", true)
		child := tracer.StartSpan("SELECT", opentracing.ChildOf(root.Context()), opentracing.StartTime(start.Add(time.Millisecond)))
		child.FinishWithOptions(opentracing.FinishOptions{FinishTime: start.Add(1500 * time.Microsecond)})
		root.FinishWithOptions(opentracing.FinishOptions{FinishTime: start.Add(2500 * time.Microsecond)})
		traceID := root.Context().(jaegerclient.SpanContext).TraceID().String()
		rootID := root.Context().(jaegerclient.SpanContext).SpanID().String()
		closer.Close()
		tr := p.getTrace(fmt.Sprintf("%032s", traceID), 2)
		for _, s := range tr.Spans {
			switch s.OperationName {
			case "GET /cart":
				if s.StartTime != start.UnixMicro() || s.Duration != 2500 {
					t.Errorf("%s root: start %d duration %d; want %d and 2500", c.service, s.StartTime, s.Duration, start.UnixMicro())
				}
			case "SELECT":
				if len(s.References) == 0 || strings.TrimLeft(s.References[0].SpanID, "0") != strings.TrimLeft(rootID, "0") || s.Duration != 500 {
					t.Errorf("%s child: references %+v duration %d; want CHILD_OF %s, 500", c.service, s.References, s.Duration, rootID)
				}
			}
			if tr.Processes[s.ProcessID].ServiceName != c.service {
				t.Errorf("%s: process %+v", c.service, tr.Processes[s.ProcessID])
			}
		}
	}

	// Zipkin v2 JSON, as zipkin-go or Brave send it.
	zipkin := fmt.Sprintf(`[{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get /api","kind":"SERVER","timestamp":%d,"duration":207000,
	  "localEndpoint":{"serviceName":"zipkin-svc","ipv4":"192.0.2.10"},"tags":{"http.method":"GET"}},
	 {"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"5b4185666d50f68b","name":"query","kind":"CLIENT","timestamp":%d,"duration":1000,
	  "localEndpoint":{"serviceName":"zipkin-svc"}}]`, time.Now().UnixMicro(), time.Now().UnixMicro()+10)
	resp, err := httpPostJSON("http://"+p.zipkin+"/api/v2/spans", zipkin)
	if err != nil || resp != 202 {
		t.Fatalf("Zipkin intake: %d %v; want 202", resp, err)
	}
	zt := p.getTrace("5af7183fb1d4cf5f5af7183fb1d4cf5f", 2)
	for _, s := range zt.Spans {
		if s.OperationName == "get /api" && s.Duration != 207000 {
			t.Errorf("zipkin root duration %d; want 207000", s.Duration)
		}
	}

	// Search: service, operation, tag and duration bounds. Elasticsearch
	// refreshes the service index on its own schedule, apart from the span
	// index the trace was just read from: the list may lag by a refresh.
	eventually(t, 10*time.Second, "every service in /api/services", func() (bool, string) {
		code, body, _ := p.get("/api/services")
		for _, svc := range []string{"otel-http", "otel-grpc", "jaeger-udp", "jaeger-http", "zipkin-svc"} {
			if code != 200 || !strings.Contains(body, `"`+svc+`"`) {
				return false, fmt.Sprintf("%d %s; want %s", code, body, svc)
			}
		}
		return true, ""
	})
	q := url.Values{"service": {"otel-http"}, "operation": {"POST /pay"}, "tags": {`{"http.route":"/pay"}`}, "minDuration": {"1ms"}, "limit": {"5"}}
	code, body, _ := p.get("/api/traces?" + q.Encode())
	var found struct{ Data []jaegerTrace }
	if code != 200 || json.Unmarshal([]byte(body), &found) != nil || len(found.Data) != 1 {
		t.Errorf("search: %d %s; want one trace", code, body)
	}
	q.Set("tags", `{"http.route":"/other"}`)
	if code, body, _ = p.get("/api/traces?" + q.Encode()); !strings.Contains(body, `"data":[]`) {
		t.Errorf("search with a tag no span has: %d %s; want no traces", code, body)
	}
}
