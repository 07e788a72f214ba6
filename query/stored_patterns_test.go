package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/patterns"
)

// eachBackend runs f on the embedded store and, when VIGIL_TEST_ES is
// set, on Elasticsearch; open opens the same store again, as a restarted
// process would, and refresh makes writes searchable.
func eachBackend(t *testing.T, f func(t *testing.T, open func() patterns.Backend, refresh func(patterns.Backend))) {
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		f(t, func() patterns.Backend {
			s, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}, func(patterns.Backend) {})
	})
	t.Run("elasticsearch", func(t *testing.T) {
		o := esstore.DefaultOptions()
		o.URLs = []string{estest.URL(t)}
		o.IndexPrefix = fmt.Sprintf("vigiltest-%08x-logs-", rand.Uint32())
		o.Replicas, o.Retention, o.StartTimeout = 0, 0, 30*time.Second
		o.Logger = slog.New(slog.DiscardHandler)
		t.Cleanup(func() {
			base := o.IndexPrefix[:len(o.IndexPrefix)-len("logs-")]
			for _, p := range []string{o.IndexPrefix + "*", base + "patterns-*", "_index_template/" + base + "logs", "_index_template/" + base + "patterns"} {
				req, _ := http.NewRequest(http.MethodDelete, o.URLs[0]+"/"+p, nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		})
		f(t, func() patterns.Backend {
			s, err := esstore.Open(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}, func(b patterns.Backend) {
			if err := b.(*esstore.Store).Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestStoredPatterns mines lines as they are written, restarts, and
// checks /patterns answers from the stored patterns what query-time
// mining answers (TestPatterns), falling back to query-time mining for
// line filters and for lines written without mining.
func TestStoredPatterns(t *testing.T) {
	recs := patternTestRecords()
	// Written before mining at ingest: only query-time mining sees them.
	old := []model.LogRecord{{ID: model.RecordID{99, 0, 0, 16}, Timestamp: base + 1e9, ObservedTimestamp: base,
		Service: "legacy", Level: "warn", Host: "h1", Message: "disk almost full"}}
	b := base / 1e9
	eachBackend(t, func(t *testing.T, open func() patterns.Backend, refresh func(patterns.Backend)) {
		ctx := context.Background()
		first := open()
		if err := first.Write(ctx, old); err != nil {
			t.Fatal(err)
		}
		mined := patterns.NewStore(first, patterns.Options{})
		if err := mined.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := mined.Close(); err != nil { // flushes
			t.Fatal(err)
		}
		backend := open()
		refresh(backend)
		o := DefaultOptions()
		o.Logger = slog.New(slog.DiscardHandler)
		o.Patterns.MaxLines = 1 // query-time mining would see one line
		api := NewAPI(o, patterns.NewStore(backend, patterns.Options{}))
		mux := http.NewServeMux()
		api.RegisterHTTP(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		f := func(q, source, want string) {
			t.Helper()
			before := testutil.ToFloat64(api.patternSources.WithLabelValues(source))
			checkPatterns(t, srv, q, want)
			if got := testutil.ToFloat64(api.patternSources.WithLabelValues(source)); got != before+1 {
				t.Errorf("%s: answers from %q went from %v to %v; want one more", q, source, before, got)
			}
		}
		f(`{service="web"}`, "stored", fmt.Sprintf(`{"status":"success","data":[
			{"pattern":"level=info msg=started worker=<_>","level":"info","samples":[[%d,2],[%d,1]]},
			{"pattern":"connection refused to <_>","level":"error","samples":[[%d,1],[%d,1]]}]}`, b, b+60, b, b+60))
		// Logs Drilldown selects by service_name.
		f(`{service_name="web"}`, "stored", fmt.Sprintf(`{"status":"success","data":[
			{"pattern":"level=info msg=started worker=<_>","level":"info","samples":[[%d,2],[%d,1]]},
			{"pattern":"connection refused to <_>","level":"error","samples":[[%d,1],[%d,1]]}]}`, b, b+60, b, b+60))
		f(`{host="h1", level="info"}`, "stored", fmt.Sprintf(`{"status":"success","data":[
			{"pattern":"level=info msg=started worker=<_>","level":"info","samples":[[%d,3],[%d,1]]}]}`, b, b+60))
		f(`{service="web"} |= "refused"`, "mined", fmt.Sprintf(`{"status":"success","data":[
			{"pattern":"connection refused to db-2","level":"error","samples":[[%d,1]]}]}`, b+60))
		f(`{service="legacy"}`, "mined", fmt.Sprintf(`{"status":"success","data":[
			{"pattern":"disk almost full","level":"warn","samples":[[%d,1]]}]}`, b))
	})
}

func checkPatterns(t *testing.T, srv *httptest.Server, q, want string) {
	t.Helper()
	code, body := get(t, srv, "/loki/api/v1/patterns", "query", q, "start", strconv.FormatInt(base, 10),
		"end", strconv.FormatInt(base+int64(2*time.Minute), 10), "step", "60s")
	if code != 200 {
		t.Fatalf("%s: %d %s", q, code, body)
	}
	if got, want := normalizeJSON(t, body), normalizeJSON(t, want); got != want {
		t.Errorf("%s:\ngot  %s\nwant %s", q, got, want)
	}
}

// normalizeJSON decodes a patterns answer and encodes it back, so that
// answers compare whatever their spacing.
func normalizeJSON(t *testing.T, s string) string {
	t.Helper()
	var a patternsAnswer
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	b, _ := json.Marshal(a)
	return string(b)
}
