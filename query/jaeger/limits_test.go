package jaeger

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"
)

func TestQueryLimits(t *testing.T) {
	f := func(o querylimit.Options, path string, wantCode int, wantMsg string) {
		t.Helper()
		srv, _ := newServerBehind(t, querylimit.New(o).Handler)
		code, env, body := get(t, srv, path)
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
