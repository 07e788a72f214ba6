package ui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, method, path string, hdr ...string) *http.Response {
	t.Helper()
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.RegisterHTTP(mux)
	mux.HandleFunc("GET /api/services", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "api") })
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	r := io.Reader(res.Body)
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServesThePageAtTheRootOnly(t *testing.T) {
	res := serve(t, "GET", "/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if b := body(t, res); !strings.Contains(b, `<script type="module" src="/ui/app.js">`) {
		t.Fatalf("index.html does not load the app:\n%s", b)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("Content-Security-Policy = %q, want everything from the page's own origin", csp)
	}
	// The APIs keep their paths, and an unknown path is still a 404 rather
	// than the page.
	if b := body(t, serve(t, "GET", "/api/services")); b != "api" {
		t.Fatalf("GET /api/services = %q", b)
	}
	if res := serve(t, "GET", "/no/such/path"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /no/such/path = %d, want 404", res.StatusCode)
	}
}

func TestAssets(t *testing.T) {
	res := serve(t, "GET", "/ui/app.js", "Accept-Encoding", "gzip, deflate")
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET /ui/app.js = %d, encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Fatalf("Content-Type = %q", ct)
	}
	if b := body(t, res); !strings.Contains(b, "export") && !strings.Contains(b, "import") {
		t.Fatalf("app.js is not a module:\n%.200s", b)
	}
	// Revalidation answers 304 with the same ETag.
	etag := res.Header.Get("ETag")
	if res := serve(t, "GET", "/ui/app.js", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s = %d, want 304", etag, res.StatusCode)
	}
	// Without gzip, or with gzip refused, the plain bytes.
	if res := serve(t, "GET", "/ui/style.css", "Accept-Encoding", "gzip;q=0, identity"); res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("gzip;q=0 answered with %q", res.Header.Get("Content-Encoding"))
	}
	if res := serve(t, "GET", "/ui/no-such.js"); res.StatusCode != http.StatusNotFound || !strings.Contains(body(t, res), "no-such.js") {
		t.Fatalf("GET /ui/no-such.js = %d", res.StatusCode)
	}
}

// The whole UI stays within its budget of 1 MB gzipped (issue: "total
// assets ≤ 1 MB gzipped"); the figure is in docs/BENCHMARKS.md.
func TestAssetsBudget(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	raw, gz := h.Sizes()
	t.Logf("UI assets: %d bytes, %d gzipped, %d files", raw, gz, len(h.files))
	if gz > 1<<20 {
		t.Fatalf("UI assets are %d bytes gzipped, over the budget of 1 MiB", gz)
	}
}

// A path that climbs out of /ui/ reads no file: assets are looked up by
// name among the embedded ones.
func TestAssetPathsAreConfined(t *testing.T) {
	for _, p := range []string{"/ui/../ui.go", "/ui/..%2fui.go", "/ui/%2e%2e/ui_test.go", "/ui//etc/passwd", "/ui/assets/index.html"} {
		res := serve(t, "GET", p)
		if b := body(t, res); res.StatusCode == http.StatusOK || strings.Contains(b, "package ui") || strings.Contains(b, "root:") {
			t.Errorf("%s: got %d %.80q; want no file of the machine", p, res.StatusCode, b)
		}
	}
}
