package query

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// base is the time of the first test line: 2024-05-01T12:00:00Z.
var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// newTestAPI writes a small fixed data set to a real embedded store and
// serves the Loki API over it.
func newTestAPI(t *testing.T) *httptest.Server {
	t.Helper()
	s, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var recs []model.LogRecord
	add := func(sec int, service, level, msg string) {
		id := model.RecordID{byte(len(recs)), byte(len(recs) >> 8), 7}
		recs = append(recs, model.LogRecord{ID: id, Timestamp: base + int64(sec)*1e9, ObservedTimestamp: base,
			Service: service, Level: level, Host: "h1", Source: "http", Message: msg})
	}
	// api: one line every 10 s for two minutes; every third is an error.
	for i := 0; i < 12; i++ {
		level, status := "info", 200
		if i%3 == 2 {
			level, status = "error", 503
		}
		add(i*10, "api", level, `{"msg":"request","status":`+strconv.Itoa(status)+`,"took":"`+strconv.Itoa(i*10)+`ms","seq":`+strconv.Itoa(i)+`}`)
	}
	add(5, "db", "warn", `level=warn msg="slow query" took=1.5s`)
	add(65, "db", "info", `plain text line`)
	// Two lines of another host with trace context.
	for i, tid := range []string{"4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000000000000000000abc"} {
		add(30+i, "pay", "error", "payment failed")
		recs[len(recs)-1].Host, recs[len(recs)-1].TraceID, recs[len(recs)-1].SpanID = "h2", tid, "00f067aa0ba902b7"
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return serveAPI(t, s)
}

// serveAPI serves the Loki API over s until the test ends.
func serveAPI(t *testing.T, s storage.LogReader) *httptest.Server {
	mux := http.NewServeMux()
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	NewAPI(o, s).RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, params ...string) (int, string) {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	resp, err := http.Get(srv.URL + path + "?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var rangeParams = []string{"start", strconv.FormatInt(base, 10), "end", strconv.FormatInt(base+int64(2*time.Minute), 10)}

// logLines runs a log query and returns "service|line" per entry in
// response order.
func logLines(t *testing.T, srv *httptest.Server, q string, params ...string) []string {
	t.Helper()
	code, body := get(t, srv, "/loki/api/v1/query_range", append(append([]string{"query", q}, rangeParams...), params...)...)
	if code != 200 {
		t.Fatalf("%s: %d %s", q, code, body)
	}
	var r struct {
		Status string
		Data   struct {
			ResultType string
			Result     []struct {
				Stream map[string]string
				Values [][2]string
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "success" || r.Data.ResultType != "streams" {
		t.Fatalf("%s: got status %q type %q", q, r.Status, r.Data.ResultType)
	}
	var out []string
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			ts, _ := strconv.ParseInt(v[0], 10, 64)
			out = append(out, s.Stream["service"]+"|"+strconv.FormatInt((ts-base)/1e9, 10)+"|"+v[1])
		}
	}
	return out
}

func TestLogQueries(t *testing.T) {
	srv := newTestAPI(t)
	f := func(q string, params []string, want ...string) {
		t.Helper()
		got := logLines(t, srv, q, params...)
		var short []string
		for _, g := range got {
			parts := strings.SplitN(g, "|", 3)
			short = append(short, parts[0]+"@"+parts[1])
		}
		if !reflect.DeepEqual(short, want) {
			t.Errorf("%s %v:\ngot  %v\nwant %v", q, params, short, want)
		}
	}
	f(`{service="api"}`, []string{"limit", "3"}, "api@110", "api@100", "api@90")
	f(`{service="api"}`, []string{"limit", "2", "direction", "forward"}, "api@0", "api@10")
	f(`{service="api", level="error"}`, []string{"direction", "forward"}, "api@20", "api@50", "api@80", "api@110")
	f(`{service=~"api|db"} |= "slow"`, nil, "db@5")
	f(`{service="db"} != "slow"`, nil, "db@65")
	f(`{service="api"} | json | status >= 500 | seq < 6`, []string{"direction", "forward"}, "api@20", "api@50")
	f(`{service="api"} | json | took > 95ms`, nil, "api@110", "api@100")
	f(`{service="db"} | logfmt | took > 1s`, nil, "db@5")
	f(`{service="db"} |~ "(?i)PLAIN"`, nil, "db@65")
	f(`{service="nope"}`, nil)
	// Trace context is filterable like Loki's structured metadata.
	f(`{service="pay"} | trace_id="4bf92f3577b34da6a3ce929d0e0e4736"`, nil, "pay@30")
	// One stream per trace, ordered by labels.
	f(`{service="pay"} | span_id="00f067aa0ba902b7"`, []string{"direction", "forward"}, "pay@31", "pay@30")
	code, body := get(t, srv, "/loki/api/v1/query_range", append([]string{"query", `{service="pay"}`}, rangeParams...)...)
	if code != 200 || !strings.Contains(body, `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) {
		t.Errorf("trace context labels missing from the result: %d %s", code, body)
	}
	// A time window inside the data.
	f(`{service="api"}`, []string{"start", strconv.FormatInt(base+30e9, 10), "end", strconv.FormatInt(base+50e9, 10), "direction", "forward"}, "api@30", "api@40")

	// Extracted labels become part of the stream.
	code, body = get(t, srv, "/loki/api/v1/query_range", append([]string{"query", `{service="db"} | logfmt`}, rangeParams...)...)
	if code != 200 || !strings.Contains(body, `"msg":"slow query","service":"db"`) {
		t.Errorf("logfmt labels: %d %s", code, body)
	}
}

func TestMetricQueries(t *testing.T) {
	srv := newTestAPI(t)
	type series struct {
		Metric map[string]string
		Values [][2]any
		Value  [2]any
	}
	run := func(path string, params ...string) (string, []series) {
		t.Helper()
		code, body := get(t, srv, path, params...)
		if code != 200 {
			t.Fatalf("%v: %d %s", params, code, body)
		}
		var r struct {
			Data struct {
				ResultType string
				Result     []series
			}
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		return r.Data.ResultType, r.Data.Result
	}
	// Per level, lines in the minute before each step.
	rt, res := run("/loki/api/v1/query_range", "query", `sum by (level) (count_over_time({service="api"}[1m]))`,
		"start", strconv.FormatInt(base+59e9, 10), "end", strconv.FormatInt(base+119e9, 10), "step", "60")
	if rt != "matrix" || len(res) != 2 {
		t.Fatalf("got %s with %d series; want a matrix of 2", rt, len(res))
	}
	got := map[string][]string{}
	for _, s := range res {
		for _, v := range s.Values {
			got[s.Metric["level"]] = append(got[s.Metric["level"]], v[1].(string))
		}
	}
	want := map[string][]string{"info": {"4", "4"}, "error": {"2", "2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("count_over_time by level: got %v; want %v", got, want)
	}
	// Instant rate over everything: 14 lines in 2 minutes.
	rt, res = run("/loki/api/v1/query", "query", `sum(rate({host="h1"}[2m]))`, "time", strconv.FormatInt(base+119e9, 10))
	if rt != "vector" || len(res) != 1 || res[0].Value[1] != strconv.FormatFloat(14.0/120, 'f', -1, 64) {
		t.Errorf("rate: got %s %+v; want one sample of 14/120", rt, res)
	}
	_, res = run("/loki/api/v1/query", "query", `topk(1, sum by (service) (count_over_time({host="h1"}[2m])))`, "time", strconv.FormatInt(base+119e9, 10))
	if len(res) != 1 || res[0].Metric["service"] != "api" || res[0].Value[1] != "12" {
		t.Errorf("topk: got %+v; want api with 12", res)
	}
	// Grafana's health check.
	rt, res = run("/loki/api/v1/query", "query", `vector(1)+vector(1)`)
	if rt != "vector" || len(res) != 1 || res[0].Value[1] != "2" {
		t.Errorf("vector(1)+vector(1): got %s %+v", rt, res)
	}
	// Numbers alone are a scalar, [time, "value"], as Loki answers.
	code, body := get(t, srv, "/loki/api/v1/query", "query", `2 * (3 + 1) > bool 7`, "time", "1700000000")
	if want := `"result":[1700000000,"1"],"resultType":"scalar"`; code != 200 || !strings.Contains(body, want) {
		t.Errorf("2 * (3 + 1) > bool 7: got %d %s; want %s", code, body, want)
	}
}

func TestLabelEndpoints(t *testing.T) {
	srv := newTestAPI(t)
	f := func(path string, params []string, want string) {
		t.Helper()
		code, body := get(t, srv, path, append(params, rangeParams...)...)
		if code != 200 || strings.TrimSpace(body) != want {
			t.Errorf("%s %v: got %d %s; want %s", path, params, code, body, want)
		}
	}
	f("/loki/api/v1/labels", nil, `{"data":["host","level","service","service_name","source"],"status":"success"}`)
	f("/loki/api/v1/label/level/values", nil, `{"data":["error","info","warn"],"status":"success"}`)
	f("/loki/api/v1/label/host/values", nil, `{"data":["h1","h2"],"status":"success"}`)
	f("/loki/api/v1/label/level/values", []string{"query", `{service="db"}`}, `{"data":["info","warn"],"status":"success"}`)
	f("/loki/api/v1/series", []string{"match[]", `{service="db", level="warn"}`}, `{"data":[{"host":"h1","level":"warn","service":"db","service_name":"db","source":"http"}],"status":"success"}`)
}

func TestBadRequests(t *testing.T) {
	srv := newTestAPI(t)
	f := func(path string, params []string, wantCode int, wantBody string) {
		t.Helper()
		code, body := get(t, srv, path, params...)
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("%s %v: got %d %q; want %d with %q", path, params, code, body, wantCode, wantBody)
		}
	}
	qr := "/loki/api/v1/query_range"
	f(qr, []string{"query", `{service="api"`}, 400, "parse error at line 1, col 15")
	f(qr, nil, 400, "query parameter is required")
	f(qr, []string{"query", `{service="api"}`, "limit", "-1"}, 400, "invalid limit")
	f(qr, []string{"query", `{service="api"}`, "direction", "sideways"}, 400, "invalid direction")
	f(qr, []string{"query", `count_over_time({service="api"}[1m])`, "step", "0"}, 400, "zero or negative query resolution step")
	f(qr, []string{"query", `{service="api"}`, "start", "2", "end", "1"}, 400, "is before start")
	f("/loki/api/v1/query", []string{"query", `{service="api"}`}, 400, "log queries are not supported as an instant query")
	f("/loki/api/v1/series", nil, 400, "match[]")
}

func TestParseTime(t *testing.T) {
	f := func(in string, want int64) {
		t.Helper()
		got, err := parseTime("t", in, 42)
		if err != nil || got != want {
			t.Errorf("parseTime(%q): got %d, %v; want %d", in, got, err, want)
		}
	}
	f("", 42)
	f("1714564800", 1714564800e9)
	f("1714564800.5", 1714564800500000000)
	f("1714564800000000001", 1714564800000000001)
	f("2024-05-01T12:00:00Z", 1714564800e9)
}
