package jaeger

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func getV3(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func decodeResult(t *testing.T, body []byte) ptrace.Traces {
	t.Helper()
	var env struct{ Result json.RawMessage }
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(env.Result)
	if err != nil {
		t.Fatalf("result is not OTLP JSON: %v: %s", err, env.Result)
	}
	return td
}

func TestV3GetTrace(t *testing.T) {
	srv, _ := newServer(t)
	code, body := getV3(t, srv.URL+"/api/v3/traces/0000000000000001")
	if code != 200 {
		t.Fatalf("got %d %s", code, body)
	}
	td := decodeResult(t, body)
	if n := td.SpanCount(); n != 2 {
		t.Fatalf("got %d spans, want 2", n)
	}
	rs := td.ResourceSpans().At(1)
	if svc, _ := rs.Resource().Attributes().Get("service.name"); svc.Str() != "users" {
		t.Errorf("second resource service.name = %q, want users", svc.Str())
	}
	sp := rs.ScopeSpans().At(0).Spans().At(0)
	want := fixture()[1]
	if sp.Name() != want.Name || sp.ParentSpanID() != [8]byte(want.ParentSpanID) || sp.Kind() != ptrace.SpanKindClient ||
		int64(sp.EndTimestamp()-sp.StartTimestamp()) != want.Duration || sp.Status().Code() != ptrace.StatusCodeError ||
		sp.Status().Message() != want.StatusMessage || sp.Links().Len() != 1 {
		t.Errorf("span: got name %q parent %s kind %v dur %d status %v %q links %d; want %+v", sp.Name(), sp.ParentSpanID(),
			sp.Kind(), sp.EndTimestamp()-sp.StartTimestamp(), sp.Status().Code(), sp.Status().Message(), sp.Links().Len(), want)
	}

	code, body = getV3(t, srv.URL+"/api/v3/traces/42")
	if code != 404 || !strings.Contains(string(body), `"httpCode":404`) {
		t.Fatalf("unknown trace: got %d %s", code, body)
	}
}

func TestV3FindTraces(t *testing.T) {
	srv, _ := newServer(t)
	rfc := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	base := srv.URL + "/api/v3/traces?query.service_name=frontend&query.start_time_min=" + rfc(-time.Minute) + "&query.start_time_max=" + rfc(time.Hour)
	f := func(extra string, wantSpans int) {
		t.Helper()
		code, body := getV3(t, base+extra)
		if code != 200 {
			t.Fatalf("%s: got %d %s", extra, code, body)
		}
		if n := decodeResult(t, body).SpanCount(); n != wantSpans {
			t.Errorf("%s: got %d spans, want %d", extra, n, wantSpans)
		}
	}
	f("", 3)
	f("&query.num_traces=1", 1) // the slow trace, most recent
	f("&query.duration_min=1s", 1)
	f("&query.operation_name=nope", 0)

	code, body := getV3(t, srv.URL+"/api/v3/traces?query.service_name=frontend&query.start_time_min=yesterday")
	if code != 400 || !strings.Contains(string(body), "query.start_time_min") {
		t.Fatalf("bad start: got %d %s", code, body)
	}
	code, body = getV3(t, srv.URL+"/api/v3/services")
	if code != 200 || string(body) != `{"services":["frontend","users"]}` {
		t.Fatalf("services: got %d %s", code, body)
	}
	code, body = getV3(t, srv.URL+"/api/v3/operations?service=users")
	if code != 200 || string(body) != `{"operations":[{"name":"getUser","spanKind":"client"}]}` {
		t.Fatalf("operations: got %d %s", code, body)
	}
}
