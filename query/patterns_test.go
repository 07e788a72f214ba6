package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
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

type readWriter interface {
	storage.LogReader
	storage.LogWriter
}

// serveStore writes recs to s and serves the Loki API over it.
func serveStore(t *testing.T, s readWriter, recs []model.LogRecord) *httptest.Server {
	t.Helper()
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if r, ok := s.(interface{ Refresh(context.Context) error }); ok {
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	NewAPI(o, s).RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// eachStore runs f on the embedded store, and on Elasticsearch when
// VIGIL_TEST_ES is set.
func eachStore(t *testing.T, f func(t *testing.T, s readWriter)) {
	t.Run("embedded", func(t *testing.T) {
		s, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("elasticsearch", func(t *testing.T) {
		o := esstore.DefaultOptions()
		o.URLs = []string{estest.URL(t)}
		o.IndexPrefix = fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
		o.Replicas, o.Retention, o.StartTimeout = 0, 0, 30*time.Second
		o.Logger = slog.New(slog.DiscardHandler)
		s, err := esstore.Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			req, _ := http.NewRequest(http.MethodDelete, o.URLs[0]+"/"+o.IndexPrefix+"*", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			s.Close()
		})
		f(t, s)
	})
}

type patternsAnswer struct {
	Status string `json:"status"`
	Data   []struct {
		Pattern string     `json:"pattern"`
		Level   string     `json:"level"`
		Samples [][2]int64 `json:"samples"`
	} `json:"data"`
}

// patternTestRecords are the lines the patterns tests mine: two
// patterns of service web, one line of the first pattern from another.
func patternTestRecords() []model.LogRecord {
	var recs []model.LogRecord
	add := func(sec int, service, level, msg string) {
		id := model.RecordID{byte(len(recs)), 0, 0, 15}
		recs = append(recs, model.LogRecord{ID: id, Timestamp: base + int64(sec)*1e9, ObservedTimestamp: base,
			Service: service, Level: level, Host: "h1", Message: msg})
	}
	add(0, "web", "info", "level=info msg=started worker=1")
	add(10, "web", "info", "level=info msg=started worker=2")
	add(70, "web", "info", "level=info msg=started worker=3")
	add(5, "web", "error", "connection refused to db-1")
	add(65, "web", "error", "connection refused to db-2")
	add(20, "other", "info", "level=info msg=started worker=9")
	return recs
}

func TestPatterns(t *testing.T) {
	recs := patternTestRecords()
	b := base / 1e9
	eachStore(t, func(t *testing.T, s readWriter) {
		srv := serveStore(t, s, recs)
		f := func(q string, want string) {
			t.Helper()
			code, body := get(t, srv, "/loki/api/v1/patterns", "query", q, "start", strconv.FormatInt(base, 10),
				"end", strconv.FormatInt(base+int64(2*time.Minute), 10), "step", "60s")
			if code != 200 {
				t.Fatalf("%s: %d %s", q, code, body)
			}
			var got, wantV patternsAnswer
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%s: %v in %s", q, err, body)
			}
			if err := json.Unmarshal([]byte(want), &wantV); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantV) {
				t.Errorf("%s:\ngot  %s\nwant %s", q, body, want)
			}
		}
		f(`{service="web"}`, fmt.Sprintf(`{"status":"success","data":[
			{"pattern":"level=info msg=started worker=<_>","level":"info","samples":[[%d,2],[%d,1]]},
			{"pattern":"connection refused to <_>","level":"error","samples":[[%d,1],[%d,1]]}]}`, b, b+60, b, b+60))
		f(`{service="web"} |= "refused"`, fmt.Sprintf(`{"status":"success","data":[
			{"pattern":"connection refused to <_>","level":"error","samples":[[%d,1],[%d,1]]}]}`, b, b+60))
		f(`{service="none"}`, `{"status":"success","data":[]}`)
	})
}

func TestPatternsBadRequest(t *testing.T) {
	srv := newTestAPI(t)
	f := func(want string, params ...string) {
		t.Helper()
		code, body := get(t, srv, "/loki/api/v1/patterns", params...)
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("patterns %v: got %d %q; want 400 containing %q", params, code, body, want)
		}
	}
	f("query parameter is required")
	f("parse error", "query", `{service=}`)
	f("parse error", "query", `rate({service="api"}[1m])`)
	f("invalid step", "query", `{service="api"}`, "step", "fast")
}
