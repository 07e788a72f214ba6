package sdk

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// testService is a small service built on the SDK: a mux with patterns,
// the middleware around it, metrics on the same port.
func testService() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		Logger().InfoContext(r.Context(), "get user", "id", r.PathValue("id"))
		fmt.Fprintf(w, "user %s", r.PathValue("id"))
	})
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, strings.NewReader("content")) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(30 * time.Millisecond) })
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.Handle("GET /metrics", MetricsHandler())
	return HTTPMiddleware(mux)
}

// scrape reads the SDK's metrics as a scraper would, in the text format
// or, with proto, in the protobuf format that carries native histograms.
func scrape(t *testing.T, url string, proto bool) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	if proto {
		req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !proto {
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return mfs
	}
	mfs := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			return mfs
		} else if err != nil {
			t.Fatal(err)
		}
		mfs[mf.GetName()] = &mf
	}
}

// series returns the metric of family name whose labels include want.
func series(mfs map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if got[want[i]] != want[i+1] {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestGoldenMetrics(t *testing.T) {
	initTest(t, Config{Service: "shop", Grade: 1, TracesDisabled: true, Buckets: []float64{0.02, 60}})
	srv := httptest.NewServer(testService())
	defer srv.Close()
	do := func(method, path string, n int) {
		for i := 0; i < n; i++ {
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	do("GET", "/users/1", 2)
	do("GET", "/users/2", 1)
	do("POST", "/users", 1)
	do("GET", "/file", 2)
	do("GET", "/slow", 1)
	do("GET", "/no/such/path", 2)
	do("DELETE", "/users/1", 1) // 405, no pattern matched
	do("BREW", "/users/1", 1)
	do("GET", "/boom", 1)

	mfs := scrape(t, srv.URL, false)
	count := func(route, method, code string, want float64) {
		t.Helper()
		m := series(mfs, "vigil_http_requests_total", "service", "shop", "grade", "1", "route", route, "method", method, "code", code)
		if m == nil || m.GetCounter().GetValue() != want {
			t.Errorf("vigil_http_requests_total{route=%q,method=%q,code=%q}: got %v; want %v", route, method, code, m, want)
		}
	}
	count("/users/{id}", "GET", "200", 3)
	count("/users", "POST", "201", 1)
	count("/file", "GET", "200", 2)
	count("/slow", "GET", "200", 1)
	count("unmatched", "GET", "404", 2)
	count("unmatched", "DELETE", "405", 1)
	count("unmatched", "OTHER", "405", 1)
	count("/boom", "GET", "500", 1)
	for _, m := range mfs["vigil_http_requests_total"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "/1") {
				t.Errorf("a raw path leaked into the route label: %v", m)
			}
		}
	}

	h := series(mfs, "vigil_http_request_duration_seconds", "route", "/users/{id}", "method", "GET", "code", "200").GetHistogram()
	if h.GetSampleCount() != 3 || len(h.Bucket) != 3 || h.Bucket[1].GetCumulativeCount() != 3 || h.Bucket[1].GetUpperBound() != 60 {
		t.Errorf("duration of GET /users/{id}: got %v; want 3 observations, buckets 0.02, 60 and +Inf", h)
	}
	h = series(mfs, "vigil_http_request_duration_seconds", "route", "/slow").GetHistogram()
	if h.GetSampleCount() != 1 || h.Bucket[0].GetCumulativeCount() != 0 || h.Bucket[1].GetCumulativeCount() != 1 || h.GetSampleSum() < 0.03 {
		t.Errorf("duration of GET /slow (30ms): got %v; want it above the 0.02 bucket, within 60", h)
	}
	// The scrape itself is in flight while the gauge is read.
	if g := series(mfs, "vigil_http_inflight_requests", "service", "shop"); g.GetGauge().GetValue() != 1 {
		t.Errorf("vigil_http_inflight_requests during a scrape: got %v; want 1", g)
	}
	if m := series(mfs, "vigil_sdk_panics_total", "where", "http"); m.GetCounter().GetValue() != 1 {
		t.Errorf("vigil_sdk_panics_total{where=http}: got %v; want 1", m)
	}

	// Negotiating protobuf gives the native histogram beside the buckets.
	mfs = scrape(t, srv.URL, true)
	h = series(mfs, "vigil_http_request_duration_seconds", "route", "/users/{id}", "method", "GET").GetHistogram()
	if h.GetSchema() == 0 && len(h.PositiveSpan) == 0 || h.GetSampleCount() != 3 || len(h.Bucket) != 2 {
		t.Errorf("native histogram of GET /users/{id}: got %v; want a schema and spans besides 2 classic buckets", h)
	}
}

func TestClientMetrics(t *testing.T) {
	initTest(t, Config{Service: "shop", Grade: 1, TracesDisabled: true})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.WriteHeader(404)
		}
	}))
	defer backend.Close()
	c := &http.Client{Transport: HTTPTransport(nil)}
	for _, p := range []string{"/a", "/b", "/missing"} {
		resp, err := c.Get(backend.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := c.Get("http://127.0.0.1:1/refused"); err == nil {
		t.Fatal("a request to port 1 succeeded")
	}
	srv := httptest.NewServer(testService())
	defer srv.Close()
	mfs := scrape(t, srv.URL, false)
	peer := strings.TrimPrefix(backend.URL, "http://")
	f := func(peer, code string, want float64) {
		t.Helper()
		m := series(mfs, "vigil_http_client_requests_total", "peer", peer, "method", "GET", "code", code)
		if m.GetCounter().GetValue() != want {
			t.Errorf("vigil_http_client_requests_total{peer=%q,code=%q}: got %v; want %v", peer, code, m, want)
		}
		if h := series(mfs, "vigil_http_client_request_duration_seconds", "peer", peer, "code", code); float64(h.GetHistogram().GetSampleCount()) != want {
			t.Errorf("vigil_http_client_request_duration_seconds{peer=%q,code=%q}: got %v; want %v observations", peer, code, h, want)
		}
	}
	f(peer, "200", 2)
	f(peer, "404", 1)
	f("127.0.0.1:1", "error", 1)
	c.CloseIdleConnections()
}

func TestRouteLabel(t *testing.T) {
	f := func(pattern, want string) {
		t.Helper()
		if got := routeLabel(pattern); got != want {
			t.Errorf("routeLabel(%q) = %q; want %q", pattern, got, want)
		}
	}
	f("", "unmatched")
	f("/", "/")
	f("GET /users/{id}", "/users/{id}")
	f("POST  example.com/x", "example.com/x")
	f("example.com/x/{rest...}", "example.com/x/{rest...}")
}
