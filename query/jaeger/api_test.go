package jaeger

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/spanstore"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is 2026-03-02T10:00:00Z.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func ns(d time.Duration) int64 { return t0.Add(d).UnixNano() }

func traceID(hi, lo byte) model.TraceID {
	var id model.TraceID
	id[7], id[15] = hi, lo
	return id
}

func spanID(n byte) model.SpanID { return model.SpanID{0, 0, 0, 0, 0, 0, 0xa0, n} }

// fixture: trace 1 (frontend → users, 64-bit id, every kind of field),
// trace 2 (frontend, slow, error, 128-bit id).
func fixture() []model.Span {
	root := model.Span{
		TraceID: traceID(0, 1), SpanID: spanID(1), Name: "GET /users", Kind: model.SpanKindServer,
		StartTime: ns(0), Duration: int64(12 * time.Millisecond), Flags: 1,
		Service: "frontend", Host: "web-1", Env: "prod", Grade: 1,
		Attributes: []model.TypedAttr{
			{Key: "http.method", Type: model.AttrString, Str: "GET"},
			{Key: "http.status_code", Type: model.AttrInt64, Int: 200},
			{Key: "sampled", Type: model.AttrBool, Int: 1},
			{Key: "ratio", Type: model.AttrFloat64, Float: 0.5},
			{Key: "big", Type: model.AttrInt64, Int: 1 << 60},
			{Key: "raw", Type: model.AttrBinary, Str: "\x01\x02"},
		},
		Process: []model.TypedAttr{{Key: "ip", Type: model.AttrString, Str: "10.0.0.1"}},
		Events: []model.SpanEvent{{Time: ns(time.Millisecond), Name: "cache miss",
			Attributes: []model.TypedAttr{{Key: "key", Type: model.AttrString, Str: "u:1"}}}},
		StatusCode: 1,
	}
	child := model.Span{
		TraceID: traceID(0, 1), SpanID: spanID(2), ParentSpanID: spanID(1), Name: "getUser", Kind: model.SpanKindClient,
		StartTime: ns(2 * time.Millisecond), Duration: int64(1500 * time.Microsecond),
		Service: "users", Host: "db-1",
		References: []model.SpanRef{{Type: model.RefFollowsFrom, TraceID: traceID(0, 9), SpanID: spanID(9)}},
		StatusCode: 2, StatusMessage: "no such user", Warnings: []string{"clock skew adjusted"},
	}
	slow := model.Span{
		TraceID: traceID(0xff, 2), SpanID: spanID(3), Name: "GET /users", Kind: model.SpanKindServer,
		StartTime: ns(time.Minute), Duration: int64(2 * time.Second), Service: "frontend", Host: "web-1", Env: "prod", Grade: 1,
		Attributes: []model.TypedAttr{{Key: "http.status_code", Type: model.AttrInt64, Int: 500}},
		Process:    []model.TypedAttr{{Key: "ip", Type: model.AttrString, Str: "10.0.0.1"}},
		StatusCode: 2,
	}
	return []model.Span{root, child, slow}
}

func newServer(t *testing.T) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	return newServerBehind(t, func(h http.Handler) http.Handler { return h })
}

// newServerBehind serves the fixture's APIs behind wrap.
func newServerBehind(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	st, err := spanstore.Open(spanstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Write(context.Background(), fixture()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts := DefaultOptions()
	opts.Registerer = reg
	opts.now = func() time.Time { return t0.Add(time.Hour) }
	api := NewAPI(opts, st)
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	api.RegisterV3(mux)
	srv := httptest.NewServer(wrap(mux))
	t.Cleanup(srv.Close)
	return srv, reg
}

type envelope struct {
	Data   json.RawMessage `json:"data"`
	Total  int             `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
	Errors []struct {
		Code    int    `json:"code"`
		Msg     string `json:"msg"`
		TraceID string `json:"traceID"`
	} `json:"errors"`
}

func get(t *testing.T, srv *httptest.Server, path string) (int, envelope, []byte) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%s: %v: %s", path, err, body)
	}
	return resp.StatusCode, env, body
}

func TestListEndpoints(t *testing.T) {
	srv, _ := newServer(t)
	f := func(path, wantData string, wantTotal int) {
		t.Helper()
		code, env, body := get(t, srv, path)
		if code != 200 || env.Errors != nil {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		if string(env.Data) != wantData || env.Total != wantTotal {
			t.Errorf("%s: got data %s total %d; want %s total %d", path, env.Data, env.Total, wantData, wantTotal)
		}
	}
	f("/api/services", `["frontend","users"]`, 2)
	f("/api/services/frontend/operations", `["GET /users"]`, 1)
	f("/api/services/nope/operations", `[]`, 0)
	f("/api/operations?service=users", `[{"name":"getUser","spanKind":"client"}]`, 1)
	f("/api/operations?service=users&spanKind=server", `[]`, 0)
	f("/api/dependencies?endTs="+itoa(t0.Add(time.Hour).UnixMilli())+"&lookback=7200000",
		`[{"parent":"frontend","child":"users","callCount":1}]`, 1)
	f("/api/dependencies?endTs="+itoa(t0.Add(-time.Hour).UnixMilli())+"&lookback=60000", `[]`, 0)
}

func itoa(n int64) string {
	return json.Number(strings.TrimSpace(string(must(json.Marshal(n))))).String()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestGetTraceGolden(t *testing.T) {
	srv, _ := newServer(t)
	code, _, body := get(t, srv, "/api/traces/0000000000000001")
	if code != 200 {
		t.Fatalf("got %d: %s", code, body)
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, body, "", "  ")
	golden := filepath.Join("testdata", "trace.golden.json")
	if *update {
		os.WriteFile(golden, pretty.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("got\n%s\nwant (%s)\n%s", pretty.Bytes(), golden, want)
	}
	// Leading zeros are optional, as in Jaeger.
	if code, _, body := get(t, srv, "/api/traces/1"); code != 200 {
		t.Fatalf("short id: got %d: %s", code, body)
	}
	if code, _, _ := get(t, srv, "/api/traces/ff0000000000000002"); code != 200 {
		t.Fatalf("128-bit id: got %d", code)
	}
}

func TestGetTraceErrors(t *testing.T) {
	srv, _ := newServer(t)
	code, env, body := get(t, srv, "/api/traces/abcdef")
	if code != 404 || len(env.Errors) != 1 || env.Errors[0].Code != 404 || string(env.Data) != "null" {
		t.Fatalf("unknown id: got %d %s", code, body)
	}
	code, env, body = get(t, srv, "/api/traces/xyz")
	if code != 400 || len(env.Errors) != 1 || !strings.Contains(env.Errors[0].Msg, "traceID") {
		t.Fatalf("bad id: got %d %s", code, body)
	}
	want := `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"parameter traceID: trace id \"xyz\": want 1 to 32 hex digits"}]}` + "\n"
	if string(body) != want {
		t.Fatalf("error envelope:\ngot  %s\nwant %s", body, want)
	}
}

func TestFindTraces(t *testing.T) {
	srv, _ := newServer(t)
	start, end := itoa(t0.Add(-time.Minute).UnixMicro()), itoa(t0.Add(2*time.Minute).UnixMicro())
	win := "&start=" + start + "&end=" + end
	f := func(query string, want ...string) {
		t.Helper()
		code, env, body := get(t, srv, "/api/traces?"+query)
		if code != 200 {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		var traces []Trace
		json.Unmarshal(env.Data, &traces)
		got := []string{}
		for _, tr := range traces {
			got = append(got, tr.TraceID)
		}
		if want == nil {
			want = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", query, got, want)
		}
	}
	t1, t2 := "0000000000000001", "00000000000000ff0000000000000002"
	f("service=frontend"+win, t2, t1)
	f("service=frontend&limit=1"+win, t2)
	f("service=frontend&operation=GET+/users"+win, t2, t1)
	f("service=frontend&operation=nope" + win)
	f("service=users"+win, t1)
	f("service=frontend&minDuration=1.2ms&maxDuration=1s"+win, t1)
	f("service=frontend&minDuration=1s"+win, t2)
	f("service=users&maxDuration=1500us"+win, t1)
	f("service=users&maxDuration=1499us" + win)
	f(`service=frontend&tags={"http.status_code":"500"}`+win, t2)
	f(`service=frontend&tags={"http.status_code":200}`+win, t1) // a JSON number
	f("service=frontend&tag=http.status_code:200&tag=sampled:true"+win, t1)
	f("service=frontend&tag=ip:10.0.0.1"+win, t2, t1) // process tag
	f("service=frontend&tag=key:u:1"+win, t1)         // event tag; value holds ':'
	f("service=users&tag=error:true"+win, t1)
	f("service=frontend&start="+itoa(t0.Add(30*time.Second).UnixMicro())+"&end="+end, t2)
	f("service=frontend&lookback=2h", t2, t1) // now is t0+1h
	f("service=frontend&lookback=59m30s", t2)
	f("service=frontend&lookback=10m")
	f("traceID=1&traceID=ff0000000000000002", t1, t2)

	code, env, _ := get(t, srv, "/api/traces?traceID=1&traceID=42")
	if code != 200 || len(env.Errors) != 1 || env.Errors[0].Code != 404 || env.Errors[0].TraceID != "42" {
		t.Fatalf("missing trace id: got %d %+v", code, env.Errors)
	}
}

func TestBadParameters(t *testing.T) {
	srv, reg := newServer(t)
	f := func(path, param string) {
		t.Helper()
		code, env, body := get(t, srv, path)
		if code != 400 || len(env.Errors) != 1 || env.Errors[0].Code != 400 || !strings.Contains(env.Errors[0].Msg, "parameter "+param+":") {
			t.Errorf("%s: got %d %s; want 400 naming %s", path, code, body, param)
		}
	}
	f("/api/traces", "service")
	f("/api/traces?service=a&minDuration=fast", "minDuration")
	f("/api/traces?service=a&maxDuration=-1s", "maxDuration")
	f("/api/traces?service=a&minDuration=2s&maxDuration=1s", "maxDuration")
	f("/api/traces?service=a&start=yesterday", "start")
	f("/api/traces?service=a&end=1.5", "end")
	f("/api/traces?service=a&start=20&end=10", "start")
	f("/api/traces?service=a&limit=ten", "limit")
	f("/api/traces?service=a&limit=-1", "limit")
	f("/api/traces?service=a&lookback=forever", "lookback")
	f("/api/traces?service=a&tags={bad", "tags")
	f("/api/traces?service=a&tag=nocolon", "tag")
	f("/api/traces?traceID=zz", "traceID")
	f("/api/operations", "service")
	f("/api/operations?service=a&spanKind=sideways", "spanKind")
	f("/api/dependencies?endTs=now", "endTs")
	f("/api/dependencies?lookback=0", "lookback")

	n, err := testutilCount(reg, "vigil_jaeger_requests_total", "400")
	if err != nil || n != 17 {
		t.Errorf("vigil_jaeger_requests_total{code=400} = %v, %v; want 17", n, err)
	}
}

func testutilCount(reg *prometheus.Registry, name, code string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n, nil
}

func TestParseDuration(t *testing.T) {
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := parseDuration("d", in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("1.2ms", 1200*time.Microsecond)
	f("100us", 100*time.Microsecond)
	f("100µs", 100*time.Microsecond)
	f("1s", time.Second)
	f("2d", 48*time.Hour)
}
