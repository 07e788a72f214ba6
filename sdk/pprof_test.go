package sdk

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPprofHandlers(t *testing.T) {
	initTest(t, Config{Service: "shop", Grade: 1, Env: "prod", Version: "2.0", Host: "h7", TracesDisabled: true})
	admin := http.NewServeMux()
	RegisterPprof(admin)
	srv := httptest.NewServer(admin)
	defer srv.Close()
	f := func(path, wantBody string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), wantBody) {
			t.Errorf("GET %s: got %d %.100q; want 200 with %q", path, resp.StatusCode, b, wantBody)
		}
		h := resp.Header
		if h.Get("Vigil-Service") != "shop" || h.Get("Vigil-Grade") != "1" || h.Get("Vigil-Env") != "prod" ||
			h.Get("Vigil-Version") != "2.0" || h.Get("Vigil-Host") != "h7" {
			t.Errorf("GET %s: labels %v; want service, grade, env, version and host", path, h)
		}
	}
	f("/debug/pprof/", "goroutine")
	f("/debug/pprof/goroutine?debug=1", "TestPprofHandlers")
	f("/debug/pprof/heap?debug=1", "heap profile")
	f("/debug/pprof/cmdline", "sdk.test")
	f("/debug/pprof/profile?seconds=1", "")
}
