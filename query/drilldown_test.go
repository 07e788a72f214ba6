package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
)

// The data set of the Grafana and Logs Drilldown tests: service checkout
// logs without a level (its detected level comes from the body), api logs
// with one.
type ddLine struct {
	sec                  int
	service, level, host string
	msg, traceID         string
}

var ddLines = []ddLine{
	{0, "checkout", "", "h1", `{"level":"error","msg":"card declined","user":{"id":"u1"},"amount":12.5}`, ""},
	{10, "checkout", "", "h1", `level=warn msg="retrying" attempt=2 took=150ms`, ""},
	{20, "checkout", "", "h1", `2024-05-01 [DEBUG] cache miss`, ""},
	{30, "checkout", "", "h1", `hello world`, ""},
	{5, "api", "info", "h2", `{"status":200,"path":"/a"}`, ""},
	{15, "api", "info", "h2", `{"status":404,"path":"/b"}`, "4bf92f3577b34da6a3ce929d0e0e4736"},
	{25, "api", "info", "h2", `{"status":200,"path":"/a"}`, ""},
	{35, "api", "error", "h2", `{"status":500,"path":"/c"}`, ""},
}

// ddBytes sums the line bytes of the lines keep selects.
func ddBytes(keep func(ddLine) bool) int {
	n := 0
	for _, l := range ddLines {
		if keep(l) {
			n += len(l.msg)
		}
	}
	return n
}

func ddRecords() []model.LogRecord {
	recs := make([]model.LogRecord, len(ddLines))
	for i, l := range ddLines {
		recs[i] = model.LogRecord{ID: model.RecordID{byte(i), 9, 9}, Timestamp: base + int64(l.sec)*1e9, ObservedTimestamp: base,
			Service: l.service, Level: l.level, Host: l.host, Env: "prod", Source: "otlp", Message: l.msg, TraceID: l.traceID}
	}
	return recs
}

func embeddedDrilldown(t *testing.T) *httptest.Server {
	t.Helper()
	// Half the lines in blocks, half in the head, so the index endpoints
	// sum both.
	recs := ddRecords()
	s := restartedStore(t, recs[:len(recs)/2], recs[len(recs)/2:])
	return serveAPI(t, s)
}

// restartedStore returns an embedded store holding before in blocks
// (written, then the store closed and reopened) and after in its head.
func restartedStore(t *testing.T, before, after []model.LogRecord) *logstore.Store {
	t.Helper()
	opts := logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}
	s, err := logstore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = logstore.Open(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Write(context.Background(), after); err != nil {
		t.Fatal(err)
	}
	return s
}

func esDrilldown(t *testing.T) *httptest.Server {
	t.Helper()
	s, _ := esStoreWith(t, ddRecords())
	return serveAPI(t, s)
}

// esStoreWith returns an Elasticsearch store of indices of its own
// holding recs, searchable, and its options.
func esStoreWith(t testing.TB, recs []model.LogRecord) (*esstore.Store, esstore.Options) {
	t.Helper()
	o := esstore.DefaultOptions()
	o.URLs = []string{estest.URL(t)}
	o.IndexPrefix = fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	o.Replicas, o.Retention, o.StartTimeout = 0, 0, 30*time.Second
	o.Logger = slog.New(slog.DiscardHandler)
	ctx := context.Background()
	s, err := esstore.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		deleteESIndices(o.URLs[0], o.IndexPrefix)
	})
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return s, o
}

// deleteESIndices removes the indices and index template of a test's
// prefix (Elasticsearch refuses wildcard deletes by default).
func deleteESIndices(esURL, prefix string) {
	del := func(path string) {
		req, _ := http.NewRequest(http.MethodDelete, esURL+path, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if resp, err := http.Get(esURL + "/_cat/indices/" + prefix + "*?h=index"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, idx := range strings.Fields(string(b)) {
			del("/" + idx)
		}
	}
	del("/_index_template/" + strings.TrimRight(prefix, "-_."))
}

func TestGrafanaCallsEmbedded(t *testing.T) { testGrafanaCalls(t, embeddedDrilldown(t)) }
func TestGrafanaCallsES(t *testing.T)       { testGrafanaCalls(t, esDrilldown(t)) }

// call makes a request as Grafana does (GET, its headers) and decodes the
// JSON answer into out.
func call(t *testing.T, srv *httptest.Server, path string, header http.Header, out any, params ...string) {
	t.Helper()
	// Decode into a fresh value: json.Unmarshal merges into maps it finds.
	reflect.ValueOf(out).Elem().SetZero()
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path+"?"+v.Encode(), nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %v: %d %s", path, params, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v in %s", path, err, b)
	}
}

func testGrafanaCalls(t *testing.T, srv *httptest.Server) {
	// Grafana sends RFC 3339 times on resource calls and ns on queries.
	rfc := func(sec int) string { return time.Unix(0, base+int64(sec)*1e9).UTC().Format(time.RFC3339) }
	rng := []string{"start", rfc(0), "end", rfc(60)}
	drilldown := http.Header{"X-Query-Tags": {"Source=grafana-lokiexplore-app"}}
	with := func(extra ...string) []string { return append(append([]string{}, rng...), extra...) }

	t.Run("categorize-labels", func(t *testing.T) {
		type resp struct {
			Data struct {
				EncodingFlags []string
				Result        []struct {
					Stream map[string]string
					Values []json.RawMessage
				}
			}
		}
		var r resp
		h := http.Header{"X-Loki-Response-Encoding-Flags": {"categorize-labels"}}
		call(t, srv, "/loki/api/v1/query_range", h, &r, append(with("query", `{service_name="api"} | json`), "direction", "forward")...)
		if !reflect.DeepEqual(r.Data.EncodingFlags, []string{"categorize-labels"}) {
			t.Errorf("encodingFlags: got %v", r.Data.EncodingFlags)
		}
		// Two streams (level info and error), stream labels only.
		if len(r.Data.Result) != 2 {
			t.Fatalf("got %d streams; want 2: %+v", len(r.Data.Result), r.Data.Result)
		}
		wantStream := map[string]string{"env": "prod", "host": "h2", "level": "info", "service": "api", "service_name": "api", "source": "otlp"}
		if got := r.Data.Result[1].Stream; !reflect.DeepEqual(got, wantStream) {
			t.Errorf("stream labels: got %v; want %v", got, wantStream)
		}
		var entries [][3]json.RawMessage
		for _, v := range r.Data.Result[1].Values {
			var e [3]json.RawMessage
			if err := json.Unmarshal(v, &e); err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e)
		}
		if len(entries) != 3 {
			t.Fatalf("info entries: got %d; want 3", len(entries))
		}
		type cat struct {
			StructuredMetadata map[string]string
			Parsed             map[string]string
		}
		var second cat
		_ = json.Unmarshal(entries[1][2], &second)
		wantSecond := cat{
			StructuredMetadata: map[string]string{"detected_level": "info", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
			Parsed:             map[string]string{"path": "/b", "status": "404"},
		}
		if !reflect.DeepEqual(second, wantSecond) {
			t.Errorf("entry at 15 s: got %+v; want %+v", second, wantSecond)
		}
		// Without the header: today's shape, everything in stream.
		var plain resp
		call(t, srv, "/loki/api/v1/query_range", nil, &plain, with("query", `{service_name="api"} |= "404"`)...)
		if len(plain.Data.EncodingFlags) != 0 || len(plain.Data.Result) != 1 || plain.Data.Result[0].Stream["trace_id"] == "" ||
			plain.Data.Result[0].Stream["detected_level"] != "info" || string(plain.Data.Result[0].Values[0]) == "" {
			t.Errorf("without the header: got %+v", plain.Data)
		}
		var e []any
		_ = json.Unmarshal(plain.Data.Result[0].Values[0], &e)
		if len(e) != 2 {
			t.Errorf("without the header an entry is [ts, line]; got %v", e)
		}
	})

	t.Run("service_name and detected_level", func(t *testing.T) {
		lines := func(q string) []string {
			var r struct {
				Data struct {
					Result []struct{ Values [][2]string }
				}
			}
			call(t, srv, "/loki/api/v1/query_range", nil, &r, with("query", q)...)
			var out []string
			for _, s := range r.Data.Result {
				for _, v := range s.Values {
					ts, _ := strconv.ParseInt(v[0], 10, 64)
					out = append(out, strconv.FormatInt((ts-base)/1e9, 10))
				}
			}
			sort.Strings(out)
			return out
		}
		f := func(q string, want ...string) {
			t.Helper()
			if got := lines(q); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: got %v; want %v", q, got, want)
			}
		}
		f(`{service_name="checkout"}`, "0", "10", "20", "30")
		f(`{service="checkout"}`, "0", "10", "20", "30")
		f(`{service_name="checkout"} | detected_level="error"`, "0")
		f(`{service_name="checkout", detected_level="warn"}`, "10")
		f(`{service_name="checkout"} | detected_level="debug"`, "20")
		f(`{detected_level="unknown"}`, "30")
		f(`{detected_level="info"}`, "15", "25", "5")
		// Grafana's log volume groups by level and detected_level.
		var m struct {
			Data struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		call(t, srv, "/loki/api/v1/query", nil, &m, "query", `sum by (detected_level) (count_over_time({service_name="checkout"}[1m]))`, "time", strconv.FormatInt(base+40e9, 10))
		got := map[string]string{}
		for _, s := range m.Data.Result {
			got[s.Metric["detected_level"]] = s.Value[1].(string)
		}
		want := map[string]string{"error": "1", "warn": "1", "debug": "1", "unknown": "1"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("sum by detected_level: got %v; want %v", got, want)
		}
	})

	t.Run("labels narrowed by query", func(t *testing.T) {
		f := func(path string, params []string, want ...string) {
			t.Helper()
			var r struct{ Data []string }
			call(t, srv, path, nil, &r, with(params...)...)
			if len(r.Data) != len(want) || len(want) > 0 && !reflect.DeepEqual(r.Data, want) {
				t.Errorf("%s %v: got %v; want %v", path, params, r.Data, want)
			}
		}
		f("/loki/api/v1/labels", nil, "env", "host", "level", "service", "service_name", "source")
		f("/loki/api/v1/labels", []string{"query", `{service_name="checkout"}`}, "env", "host", "service", "service_name", "source")
		f("/loki/api/v1/labels", []string{"query", `{service_name="nope"}`})
		f("/loki/api/v1/label/service_name/values", nil, "api", "checkout")
		f("/loki/api/v1/label/host/values", []string{"query", `{service_name="checkout"}`}, "h1")
		f("/loki/api/v1/label/level/values", []string{"query", `{service="api"}`}, "error", "info")
		f("/loki/api/v1/label/detected_level/values", []string{"query", `{service_name="checkout"}`}, "debug", "error", "unknown", "warn")
		f("/loki/api/v1/label/detected_level/values", nil, "debug", "error", "info", "unknown", "warn")
	})

	t.Run("index/stats", func(t *testing.T) {
		var r struct{ Streams, Chunks, Bytes, Entries int }
		call(t, srv, "/loki/api/v1/index/stats", nil, &r, with("query", `{service_name="api"}`)...)
		want := struct{ Streams, Chunks, Bytes, Entries int }{2, 2, ddBytes(func(l ddLine) bool { return l.service == "api" }), 4}
		if r != want {
			t.Errorf("got %+v; want %+v", r, want)
		}
		call(t, srv, "/loki/api/v1/index/stats", nil, &r, "query", `{service_name="api"}`, "start", rfc(10), "end", rfc(20))
		want = struct{ Streams, Chunks, Bytes, Entries int }{1, 1, len(ddLines[5].msg), 1}
		if r != want {
			t.Errorf("10–20 s: got %+v; want %+v", r, want)
		}
	})

	type volume struct {
		Data struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
				Values [][2]any
			}
		}
	}
	t.Run("index/volume", func(t *testing.T) {
		// The Drilldown landing page.
		var r volume
		call(t, srv, "/loki/api/v1/index/volume", drilldown, &r, with("query", `{service_name=~".+"}`, "limit", "5000")...)
		api, checkout := ddBytes(func(l ddLine) bool { return l.service == "api" }), ddBytes(func(l ddLine) bool { return l.service == "checkout" })
		if r.Data.ResultType != "vector" || len(r.Data.Result) != 2 {
			t.Fatalf("got %+v; want a vector of 2", r.Data)
		}
		got := map[string]string{}
		for _, s := range r.Data.Result {
			if len(s.Metric) != 1 {
				t.Errorf("metric %v: want service_name only", s.Metric)
			}
			got[s.Metric["service_name"]] = s.Value[1].(string)
		}
		want := map[string]string{"api": strconv.Itoa(api), "checkout": strconv.Itoa(checkout)}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("volume by service_name: got %v; want %v", got, want)
		}
		// The largest first, limit keeps it.
		call(t, srv, "/loki/api/v1/index/volume", drilldown, &r, with("query", `{service_name=~".+"}`, "limit", "1")...)
		bigger := "api"
		if checkout > api {
			bigger = "checkout"
		}
		if len(r.Data.Result) != 1 || r.Data.Result[0].Metric["service_name"] != bigger {
			t.Errorf("limit 1: got %+v; want %s", r.Data.Result, bigger)
		}
		// Target labels and aggregation by label name.
		call(t, srv, "/loki/api/v1/index/volume", nil, &r, with("query", `{env="prod"}`, "targetLabels", "level")...)
		got = map[string]string{}
		for _, s := range r.Data.Result {
			got[fmt.Sprint(s.Metric)] = s.Value[1].(string)
		}
		want = map[string]string{
			"map[level:info]":  strconv.Itoa(ddBytes(func(l ddLine) bool { return l.level == "info" })),
			"map[level:error]": strconv.Itoa(len(ddLines[7].msg)),
			"map[]":            strconv.Itoa(checkout),
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("targetLabels=level: got %v; want %v", got, want)
		}
		call(t, srv, "/loki/api/v1/index/volume", nil, &r, with("query", `{env="prod"}`, "aggregateBy", "labels")...)
		got = map[string]string{}
		for _, s := range r.Data.Result {
			for k, v := range s.Metric {
				if v != "" {
					t.Errorf("aggregateBy=labels: metric %v has a value", s.Metric)
				}
				got[k] = s.Value[1].(string)
			}
		}
		all := strconv.Itoa(api + checkout)
		want = map[string]string{"env": all, "host": all, "service": all, "service_name": all, "source": all, "level": strconv.Itoa(api)}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("aggregateBy=labels: got %v; want %v", got, want)
		}
	})

	t.Run("index/volume_range", func(t *testing.T) {
		var r volume
		call(t, srv, "/loki/api/v1/index/volume_range", nil, &r, "query", `{service_name="api"}`, "start", rfc(0), "end", rfc(39), "step", "20")
		if r.Data.ResultType != "matrix" || len(r.Data.Result) != 1 {
			t.Fatalf("got %+v; want a matrix of 1", r.Data)
		}
		first := ddBytes(func(l ddLine) bool { return l.service == "api" && l.sec < 20 })
		second := ddBytes(func(l ddLine) bool { return l.service == "api" && l.sec >= 20 })
		want := [][2]any{{float64(base/1e9 + 0), strconv.Itoa(first)}, {float64(base/1e9 + 20), strconv.Itoa(second)}}
		if !reflect.DeepEqual(r.Data.Result[0].Values, want) {
			t.Errorf("got %v; want %v", r.Data.Result[0].Values, want)
		}
	})

	t.Run("detected_labels", func(t *testing.T) {
		var r struct {
			DetectedLabels []struct {
				Label       string
				Cardinality int
			}
		}
		call(t, srv, "/loki/api/v1/detected_labels", drilldown, &r, with("query", "")...)
		got := map[string]int{}
		for _, l := range r.DetectedLabels {
			got[l.Label] = l.Cardinality
		}
		want := map[string]int{"env": 1, "host": 2, "level": 2, "service": 2, "service_name": 2, "source": 1}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v; want %v", got, want)
		}
		call(t, srv, "/loki/api/v1/detected_labels", drilldown, &r, with("query", `{service_name="checkout"}`)...)
		got = map[string]int{}
		for _, l := range r.DetectedLabels {
			got[l.Label] = l.Cardinality
		}
		want = map[string]int{"env": 1, "host": 1, "service": 1, "service_name": 1, "source": 1}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("checkout: got %v; want %v", got, want)
		}
	})

	t.Run("detected_fields", func(t *testing.T) {
		type field struct {
			Label       string
			Type        string
			Cardinality int
			Parsers     []string
			JSONPath    []string `json:"jsonPath"`
		}
		var r struct {
			Fields []field
			Limit  int
		}
		call(t, srv, "/loki/api/v1/detected_fields", drilldown, &r, with("query", `{service_name="checkout"}`, "limit", "1000")...)
		got := map[string]field{}
		for _, f := range r.Fields {
			got[f.Label] = f
		}
		want := map[string]field{
			"detected_level": {"detected_level", "string", 4, nil, nil},
			"level":          {"level", "string", 2, []string{"json", "logfmt"}, []string{"level"}},
			"msg":            {"msg", "string", 2, []string{"json", "logfmt"}, []string{"msg"}},
			"user_id":        {"user_id", "string", 1, []string{"json"}, []string{"user", "id"}},
			"amount":         {"amount", "float", 1, []string{"json"}, []string{"amount"}},
			"attempt":        {"attempt", "int", 1, []string{"logfmt"}, nil},
			"took":           {"took", "duration", 1, []string{"logfmt"}, nil},
		}
		if !reflect.DeepEqual(got, want) || r.Limit != 1000 {
			t.Errorf("got %+v (limit %d)\nwant %+v", got, r.Limit, want)
		}
		var v struct{ Values []string }
		call(t, srv, "/loki/api/v1/detected_field/status/values", nil, &v, with("query", `{service_name="api"}`, "limit", "1000")...)
		if want := []string{"200", "404", "500"}; !reflect.DeepEqual(v.Values, want) {
			t.Errorf("status values: got %v; want %v", v.Values, want)
		}
		call(t, srv, "/loki/api/v1/detected_field/trace_id/values", nil, &v, with("query", `{service_name="api"}`)...)
		if want := []string{"4bf92f3577b34da6a3ce929d0e0e4736"}; !reflect.DeepEqual(v.Values, want) {
			t.Errorf("trace_id values: got %v; want %v", v.Values, want)
		}
		call(t, srv, "/loki/api/v1/detected_field/nope/values", nil, &v, with("query", `{service_name="api"}`)...)
		if len(v.Values) != 0 || v.Values == nil {
			t.Errorf("unknown field: got %#v; want []", v.Values)
		}
	})

	t.Run("drilldown-limits", func(t *testing.T) {
		var r struct {
			Limits struct {
				VolumeEnabled     bool `json:"volume_enabled"`
				DiscoverLogLevels bool `json:"discover_log_levels"`
				MaxEntries        int  `json:"max_entries_limit_per_query"`
			}
			PatternIngesterEnabled *bool `json:"pattern_ingester_enabled"`
			Version                string
		}
		call(t, srv, "/loki/api/v1/drilldown-limits", http.Header{"X-Grafana-Cache": {"private, max-age=86400"}}, &r)
		if !r.Limits.VolumeEnabled || !r.Limits.DiscoverLogLevels || r.Limits.MaxEntries != 5000 || r.PatternIngesterEnabled == nil || !*r.PatternIngesterEnabled || r.Version == "" {
			t.Errorf("got %+v", r)
		}
	})
}

func TestDrilldownBadRequests(t *testing.T) {
	srv := embeddedDrilldown(t)
	f := func(path string, params []string, want string) {
		t.Helper()
		code, body := get(t, srv, path, params...)
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("%s %v: got %d %q; want 400 with %q", path, params, code, body, want)
		}
	}
	f("/loki/api/v1/index/volume", nil, "query parameter is required")
	f("/loki/api/v1/index/volume", []string{"query", `{service_name=~".+"}`, "aggregateBy", "hosts"}, "invalid aggregation option")
	f("/loki/api/v1/index/volume", []string{"query", `{service_name=~".+"}`, "limit", "-1"}, "limit must be a positive value")
	f("/loki/api/v1/index/stats", []string{"query", `{service_name=`}, "parse error")
	f("/loki/api/v1/detected_fields", []string{"query", `{a="b"}`, "line_limit", "x"}, "invalid line_limit")
	f("/loki/api/v1/labels", []string{"query", `{`}, "parse error")
}
