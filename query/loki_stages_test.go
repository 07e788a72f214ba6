package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// stageRecords are the lines of the pipeline stage tests, one every 10 s
// from base, of service "shop".
var stageRecords = []struct{ level, msg string }{
	{"info", `{"status":"200","path":"/api/cart","user":{"id":"u1"}}`},
	{"error", `{"status":"503","path":"/api/pay","user":{"id":"u2"}}`},
	{"warn", `ts=1 addr=192.168.1.7 status=404 msg="not found"`},
	{"info", `10.0.0.3 - - [01/May/2024:12:00:30 +0000] "GET /health HTTP/1.1" 200 12`},
	{"error", "\x1b[31mERROR\x1b[0m disk full"},
	{"info", `{"pod":"p-1","_entry":"packed line"}`},
}

type logWriterReader interface {
	storage.LogReader
	Write(ctx context.Context, recs []model.LogRecord) error
}

// stageAPI serves the Loki API over s after writing stageRecords to it.
func stageAPI(t *testing.T, s logWriterReader, refresh func() error) *httptest.Server {
	t.Helper()
	var recs []model.LogRecord
	for i, r := range stageRecords {
		recs = append(recs, model.LogRecord{ID: model.RecordID{byte(i), 9}, Timestamp: base + int64(i)*10e9, ObservedTimestamp: base,
			Service: "shop", Level: r.level, Host: "h1", Source: "http", Message: r.msg})
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if refresh != nil {
		if err := refresh(); err != nil {
			t.Fatal(err)
		}
	}
	return serveAPI(t, s)
}

// TestPipelineStagesEmbedded runs the stage queries over the embedded store.
func TestPipelineStagesEmbedded(t *testing.T) {
	s, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	testPipelineStages(t, stageAPI(t, s, nil))
}

// TestPipelineStagesElasticsearch runs the same queries over Elasticsearch.
func TestPipelineStagesElasticsearch(t *testing.T) {
	o := esstore.DefaultOptions()
	o.URLs = []string{estest.URL(t)}
	o.IndexPrefix = fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	o.Replicas, o.Retention, o.StartTimeout = 0, 0, 30*time.Second
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := esstore.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanESPrefix(t, o.URLs[0], o.IndexPrefix) })
	t.Cleanup(func() { s.Close() })
	testPipelineStages(t, stageAPI(t, s, func() error { return s.Refresh(context.Background()) }))
}

// testPipelineStages checks each stage through query_range. Each want is
// "second|line" and, after a second "|", labels "k=v,k=v" the entry's
// stream must have; the expectations are worked out by hand from
// stageRecords and Loki's documentation.
func testPipelineStages(t *testing.T, srv *httptest.Server) {
	f := func(q string, want ...string) {
		t.Helper()
		code, body := get(t, srv, "/loki/api/v1/query_range", append([]string{"query", q, "direction", "forward"}, rangeParams...)...)
		if code != 200 {
			t.Errorf("%s: %d %s", q, code, body)
			return
		}
		var r struct {
			Data struct {
				Result []struct {
					Stream map[string]string
					Values [][2]string
				}
			}
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		type entry struct {
			sec    int64
			line   string
			stream map[string]string
		}
		var got []entry
		for _, s := range r.Data.Result {
			for _, v := range s.Values {
				ts, _ := strconv.ParseInt(v[0], 10, 64)
				got = append(got, entry{(ts - base) / 1e9, v[1], s.Stream})
			}
		}
		slices.SortFunc(got, func(a, b entry) int { return int(a.sec - b.sec) })
		var gotLines, wantLines []string
		for _, g := range got {
			gotLines = append(gotLines, strconv.FormatInt(g.sec, 10)+"|"+g.line)
		}
		for i, w := range want {
			parts := strings.SplitN(w, "|", 3)
			wantLines = append(wantLines, parts[0]+"|"+parts[1])
			if len(parts) < 3 || i >= len(got) {
				continue
			}
			for _, kv := range strings.Split(parts[2], ",") {
				k, v, _ := strings.Cut(kv, "=")
				if got[i].stream[k] != v {
					t.Errorf("%s: entry %d: label %s = %q; want %q (stream %v)", q, i, k, got[i].stream[k], v, got[i].stream)
				}
			}
		}
		if !reflect.DeepEqual(gotLines, wantLines) {
			t.Errorf("%s:\ngot  %q\nwant %q", q, gotLines, wantLines)
		}
	}
	sel := `{service="shop"}`
	f(sel+` | json | drop __error__, __error_details__ | status="503"`, `10|`+stageRecords[1].msg+`|path=/api/pay,user_id=u2,__error__=`)
	f(sel+` | json | __error__="" | keep status | line_format "{{.status}}"`, `0|200|status=200,service=`, `10|503|status=503`, `50|`)
	f(sel+` | json | __error__!=""`, `20|`+stageRecords[2].msg+`|__error__=JSONParserErr`,
		`30|`+stageRecords[3].msg+`|__error__=JSONParserErr`, `40|`+stageRecords[4].msg+`|__error__=JSONParserErr`)
	f(sel+` |= "disk" or "pay"`, `10|`+stageRecords[1].msg, `40|`+stageRecords[4].msg)
	f(sel+` != "GET" or "{"`, `20|`+stageRecords[2].msg, `40|`+stageRecords[4].msg)
	f(sel+` |= "ERROR" | decolorize | line_format "{{__line__ | lower}}"`, `40|error disk full`)
	f(sel+` | logfmt | addr = ip("192.168.0.0/16")`, `20|`+stageRecords[2].msg+`|addr=192.168.1.7,status=404,msg=not found`)
	f(sel + ` | logfmt | addr != ip("192.168.0.0/16")`)
	f(sel+` | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <_>" | method="GET"`,
		`30|`+stageRecords[3].msg+`|ip=10.0.0.3,path=/health,status=200`)
	f(sel+` | regexp "status=(?P<code>\\d+)" | code >= 400`, `20|`+stageRecords[2].msg+`|code=404`)
	f(sel+` | unpack | pod="p-1"`, `50|packed line|pod=p-1`)
	f(sel+` | label_format who="{{.level}}-{{.service}}", lvl=level | who="error-shop"`,
		`10|`+stageRecords[1].msg+`|who=error-shop,lvl=error,level=`, `40|`+stageRecords[4].msg+`|who=error-shop`)

	// Grafana's log volume query: lines in (t-1m, t] by level.
	code, body := get(t, srv, "/loki/api/v1/query", "query",
		`sum by (level, detected_level) (count_over_time({service="shop"} | drop __error__ [1m]))`, "time", strconv.FormatInt(base+60e9, 10))
	if code != 200 {
		t.Fatalf("volume query: %d %s", code, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, s := range r.Data.Result {
		got[s.Metric["level"]] = s.Value[1]
	}
	if want := map[string]any{"error": "2", "warn": "1", "info": "2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("volume by level: got %v; want %v", got, want)
	}
}
