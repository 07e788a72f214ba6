package jaeger

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/spanstore"
)

// newLimitedServer serves the fixture behind a query limiter with o.
func newLimitedServer(t *testing.T, o querylimit.Options) *httptest.Server {
	t.Helper()
	st, err := spanstore.Open(spanstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Write(context.Background(), fixture()); err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.now = func() time.Time { return t0.Add(time.Hour) }
	api := NewAPI(opts, st)
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	api.RegisterV3(mux)
	srv := httptest.NewServer(querylimit.New(o).Handler(mux))
	t.Cleanup(srv.Close)
	return srv
}

func TestQueryLimits(t *testing.T) {
	f := func(o querylimit.Options, path string, wantCode int, wantMsg string) {
		t.Helper()
		code, env, body := get(t, newLimitedServer(t, o), path)
		if code != wantCode {
			t.Fatalf("%s with %+v: got %d %s, want %d", path, o, code, body, wantCode)
		}
		if wantMsg != "" && (len(env.Errors) != 1 || env.Errors[0].Code != wantCode || !strings.Contains(env.Errors[0].Msg, wantMsg)) {
			t.Errorf("%s with %+v: got %s, want a Jaeger error naming %s", path, o, body, wantMsg)
		}
	}
	search := "/api/traces?service=frontend&lookback=2h"
	f(querylimit.Options{MaxRange: 3 * time.Hour}, search, http.StatusOK, "")
	f(querylimit.Options{MaxRange: time.Hour}, search, http.StatusBadRequest, "--query.max-range")
	trace := "/api/traces/" + traceID(0, 1).String()
	f(querylimit.Options{MaxBytesScanned: 1 << 20}, trace, http.StatusOK, "")
	f(querylimit.Options{MaxBytesScanned: 16}, trace, http.StatusUnprocessableEntity, "--query.max-bytes-scanned")
}
