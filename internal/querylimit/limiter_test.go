package querylimit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// blocking serves heavy queries that hold their slot until release is
// closed, telling started when each starts; cheap ones answer at once.
func blocking(started chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Heavy(r) {
			w.Write([]byte(`{"status":"success"}`))
			return
		}
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte(`{"status":"success"}`))
	})
}

func TestHandlerRefusesPastTheQueue(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := New(Options{MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: time.Minute, Registerer: reg})
	started, release := make(chan struct{}, 4), make(chan struct{})
	srv := httptest.NewServer(l.Handler(blocking(started, release)))
	defer srv.Close()

	get := func(path string) *http.Response {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Error(err)
			return nil
		}
		return resp
	}
	done := make(chan int, 2)
	for range 2 { // one runs, one waits
		go func() {
			resp := get("/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D")
			if resp != nil {
				resp.Body.Close()
				done <- resp.StatusCode
			}
		}()
	}
	<-started
	waitFor(t, func() bool { return testutil.ToFloat64(l.m.waiting) == 1 })

	resp := get("/loki/api/v1/query_range")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third query: got status %d, want 429", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After: got %q, want 60 (the queue timeout)", got)
	}
	var body struct{ Status, ErrorType, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "error" || body.ErrorType != "too_many_requests" || !strings.Contains(body.Error, "--query.max-queued=1") {
		t.Errorf("body: got %+v, want a Loki error naming --query.max-queued", body)
	}

	// A cheap request does not wait behind the heavy ones.
	for _, path := range []string{"/loki/api/v1/labels", "/", "/ui/app.js"} {
		cheap := get(path)
		cheap.Body.Close()
		if cheap.StatusCode != http.StatusOK {
			t.Errorf("%s while the queue is full: got status %d, want 200", path, cheap.StatusCode)
		}
	}

	close(release)
	<-started // the queued query ran
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("admitted query: got status %d, want 200", code)
		}
	}
	if got := testutil.ToFloat64(l.m.refused.WithLabelValues(ReasonQueueFull)); got != 1 {
		t.Errorf("refused{queue_full}: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(l.m.admitted); got != 2 {
		t.Errorf("admitted: got %v, want 2", got)
	}
	if got := testutil.ToFloat64(l.m.inFlight); got != 0 {
		t.Errorf("in flight after the queries: got %v, want 0", got)
	}
}

func TestAcquireTimesOutInTheQueue(t *testing.T) {
	l := New(Options{MaxConcurrent: 1, MaxQueued: 4, QueueTimeout: 10 * time.Millisecond})
	release, err := l.Acquire(context.Background(), DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = l.Acquire(context.Background(), DefaultKey)
	var re *RefusedError
	if !errors.As(err, &re) || re.Reason != ReasonQueueTimeout {
		t.Fatalf("got %v, want a queue_timeout refusal", err)
	}
	if !strings.Contains(err.Error(), "--query.queue-timeout") || re.RetryAfter != time.Second {
		t.Errorf("got %q retry after %s, want the flag named and 1s", err, re.RetryAfter)
	}
}

func TestAcquireLeavesTheQueueWhenTheClientGoes(t *testing.T) {
	l := New(Options{MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: time.Hour})
	release, err := l.Acquire(context.Background(), DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := l.Acquire(ctx, DefaultKey)
		errc <- err
	}()
	waitFor(t, func() bool { return testutil.ToFloat64(l.m.waiting) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	release()
	// The queue has room again and the slot is free.
	r, err := l.Acquire(context.Background(), DefaultKey)
	if err != nil {
		t.Fatalf("after the client left: %v", err)
	}
	r()
}

func TestBudget(t *testing.T) {
	l := New(Options{MaxBytesScanned: 1 << 20})
	b := BudgetOf(l.WithLimits(context.Background()))
	if err := b.Charge(1 << 20); err != nil {
		t.Fatalf("at the budget: %v", err)
	}
	err := b.Charge(1)
	if code, ok := StatusOf(err); !ok || code != http.StatusUnprocessableEntity {
		t.Fatalf("past the budget: got %v (%d), want a 422 error", err, code)
	}
	if !strings.Contains(err.Error(), "1 MiB") || !strings.Contains(err.Error(), "--query.max-bytes-scanned") {
		t.Errorf("got %q, want the budget and its flag named", err)
	}
	b.Charge(1)
	if got := testutil.ToFloat64(l.m.refused.WithLabelValues(ReasonBytesScanned)); got != 1 {
		t.Errorf("refused{bytes_scanned}: got %v, want 1 per query", got)
	}
	if err := BudgetOf(context.Background()).Charge(1 << 40); err != nil {
		t.Errorf("no limits in the context: got %v", err)
	}
}

func TestCheckRange(t *testing.T) {
	ctx := New(Options{MaxRange: 24 * time.Hour}).WithLimits(context.Background())
	t0 := time.Unix(1e9, 0)
	if err := CheckRange(ctx, t0, t0.Add(24*time.Hour)); err != nil {
		t.Errorf("a day: %v", err)
	}
	err := CheckRange(ctx, t0, t0.Add(25*time.Hour))
	if code, _ := StatusOf(err); code != http.StatusBadRequest || !strings.Contains(err.Error(), "--query.max-range") {
		t.Errorf("25h: got %v (%d), want a 400 naming --query.max-range", err, code)
	}
}

func TestWriteErrorShapes(t *testing.T) {
	f := func(path, want string) {
		t.Helper()
		w := httptest.NewRecorder()
		WriteError(w, httptest.NewRequest("GET", path, nil), 429, errors.New("busy"))
		if got := strings.TrimSpace(w.Body.String()); got != want {
			t.Errorf("%s: got %s, want %s", path, got, want)
		}
	}
	f("/loki/api/v1/query", `{"error":"busy","errorType":"too_many_requests","status":"error"}`)
	f("/api/v1/query_range", `{"error":"busy","errorType":"too_many_requests","status":"error"}`)
	f("/api/traces", `{"data":null,"errors":[{"code":429,"msg":"busy"}],"limit":0,"offset":0,"total":0}`)
	f("/api/v3/traces", `{"error":{"httpCode":429,"message":"busy"}}`)
	f("/api/0/organizations/o/issues/", `{"detail":"busy"}`)
	f("/vigil/api/v1/dumps/issues", `{"error":"busy"}`)
	f("/querier.v1.QuerierService/SelectMergeStacktraces", `{"code":"resource_exhausted","message":"busy"}`)
}

func TestHeavy(t *testing.T) {
	f := func(method, path string, want bool) {
		t.Helper()
		if got := Heavy(httptest.NewRequest(method, path, nil)); got != want {
			t.Errorf("%s %s: got heavy=%v, want %v", method, path, got, want)
		}
	}
	for _, p := range []string{"/loki/api/v1/query_range", "/loki/api/v1/query", "/loki/api/v1/series", "/loki/api/v1/index/volume",
		"/api/traces", "/api/traces/abc", "/api/v3/traces", "/api/v1/query_range", "/federate", "/api/metrics/latencies",
		"/vigil/api/v1/profiles/merge", "/querier.v1.QuerierService/SelectMergeStacktraces", "/vigil/api/v1/dumps/issues",
		"/api/0/organizations/o/issues/", "/api/0/organizations/o/events-stats/", "/some/new/api"} {
		f("GET", p, true)
	}
	for _, p := range []string{"/metrics", "/readyz", "/loki/api/v1/labels", "/loki/api/v1/label/service/values", "/loki/api/v1/tail",
		"/api/v1/labels", "/api/v1/write", "/api/v1/otlp/v1/metrics", "/api/services", "/api/services/s/operations",
		"/api/v3/services", "/vigil/api/v1/profiles/types", "/ingest", "/api/0/organizations/", "/api/0/organizations/o/projects/",
		"/loki/api/v1/status/buildinfo", "/debug/pprof/heap"} {
		f("GET", p, false)
	}
	f("PUT", "/api/0/organizations/o/issues/1/", false)
	f("POST", "/vigil/api/v1/dumps/issues/1/status", false)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
	}
}

func TestHandlerRefusesALongPrometheusRange(t *testing.T) {
	l := New(Options{MaxRange: time.Hour})
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"success"}`)) }))
	f := func(query string, wantCode int) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/query_range?"+query, nil))
		if w.Code != wantCode {
			t.Errorf("%s: got %d %s, want %d", query, w.Code, w.Body, wantCode)
		}
		if wantCode == http.StatusBadRequest && !strings.Contains(w.Body.String(), `"errorType":"bad_data"`) {
			t.Errorf("%s: got %s, want a Prometheus bad_data error", query, w.Body)
		}
	}
	f("query=up&start=1700000000&end=1700003600&step=15", http.StatusOK)
	f("query=up&start=1700000000&end=1700003600.5&step=15", http.StatusBadRequest)
	f("query=up&start=2024-05-01T00:00:00Z&end=2024-05-02T00:00:00Z&step=15", http.StatusBadRequest)
	f("query=up&start=garbage&end=1700003600&step=15", http.StatusOK) // Prometheus answers it
}

// A range query POSTed as a form, as Grafana's Prometheus data source sends
// it, reaches the handler with its form: the range check reads the body
// once, and the handler sees what it read.
func TestHandlerPassesAPostedFormOn(t *testing.T) {
	l := New(Options{MaxRange: time.Hour})
	var got url.Values
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		got = r.Form
	}))
	body := "query=up&start=1700000000&end=1700003600&step=15"
	req := httptest.NewRequest("POST", "/api/v1/query_range", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || got.Get("query") != "up" || got.Get("start") != "1700000000" || got.Get("step") != "15" {
		t.Fatalf("the handler got %d and form %v; want 200 and the posted form", w.Code, got)
	}
}
