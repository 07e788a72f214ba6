package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/storage"
)

// limitedStore writes n lines a millisecond apart from base to a real
// embedded store.
func limitedStore(t *testing.T, n int) *logstore.Store {
	t.Helper()
	s, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	recs := make([]model.LogRecord, n)
	for i := range recs {
		recs[i] = model.LogRecord{ID: model.RecordID{byte(i), byte(i >> 8), byte(i >> 16), 9}, Timestamp: base + int64(i)*1e6,
			Service: "api", Level: "error", Host: "h1", Source: "http", Message: fmt.Sprintf("level=error msg=\"request failed\" seq=%d", i)}
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return s
}

// serveLimited serves the Loki API over s behind a limiter with o.
func serveLimited(t *testing.T, s storage.LogReader, o querylimit.Options) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	ao := DefaultOptions()
	ao.Logger = slog.New(slog.DiscardHandler)
	NewAPI(ao, s).RegisterHTTP(mux)
	srv := httptest.NewServer(querylimit.New(o).Handler(mux))
	t.Cleanup(srv.Close)
	return srv
}

func TestQueryLimits(t *testing.T) {
	s := limitedStore(t, 100)
	f := func(o querylimit.Options, query string, wantCode int, wantInBody string) {
		t.Helper()
		srv := serveLimited(t, s, o)
		code, body := get(t, srv, "/loki/api/v1/query_range", append([]string{"query", query}, rangeParams...)...)
		if code != wantCode || !strings.Contains(body, wantInBody) {
			t.Errorf("%s with %+v: got %d %s, want %d naming %q", query, o, code, body, wantCode, wantInBody)
		}
	}
	heavy := `sum by (level) (rate({service="api"} |~ "fail.*" | logfmt | level="error" [1m]))`
	f(querylimit.Options{MaxRange: time.Hour}, heavy, http.StatusOK, `"status":"success"`)
	f(querylimit.Options{MaxRange: time.Minute}, heavy, http.StatusBadRequest, "--query.max-range")
	f(querylimit.Options{MaxBytesScanned: 1 << 20}, `{service="api"} |= "fail"`, http.StatusOK, `"status":"success"`)
	f(querylimit.Options{MaxBytesScanned: 512}, `{service="api"} |= "fail"`, http.StatusUnprocessableEntity, "--query.max-bytes-scanned")
	f(querylimit.Options{MaxBytesScanned: 512}, heavy, http.StatusUnprocessableEntity, "--query.max-bytes-scanned")
}

// stallingReader holds the first row of a Select until the request's
// context ends, then lets the real store go on, and reports what the
// store's Select returned.
type stallingReader struct {
	*logstore.Store
	started chan struct{}
	result  chan error
}

func (r *stallingReader) Select(ctx context.Context, p storage.SelectParams, fn func(*storage.Row) bool) error {
	first := true
	err := r.Store.Select(ctx, p, func(row *storage.Row) bool {
		if first {
			first = false
			close(r.started)
			<-ctx.Done()
		}
		return fn(row)
	})
	r.result <- err
	return err
}

func TestClientGoneStopsTheScan(t *testing.T) {
	r := &stallingReader{Store: limitedStore(t, 5000), started: make(chan struct{}), result: make(chan error, 1)}
	srv := serveLimited(t, r, querylimit.Options{MaxConcurrent: 1})
	ctx, cancel := context.WithCancel(context.Background())
	q := `sum(count_over_time({service="api"} |= "fail" [1m]))`
	url := srv.URL + "/loki/api/v1/query_range?query=" + strings.ReplaceAll(q, " ", "%20") + "&start=" + strconv.FormatInt(base, 10) + "&end=" + strconv.FormatInt(base+int64(time.Minute), 10)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-r.started
	cancel() // the client goes away mid-scan
	if err := <-r.result; !errors.Is(err, context.Canceled) {
		t.Fatalf("the store's scan returned %v after the client went away, want context.Canceled", err)
	}
	<-errc
}
