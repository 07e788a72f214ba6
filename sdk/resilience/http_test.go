package resilience

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func noSleep(context.Context, time.Duration) error { return nil }

func TestTransportRetries(t *testing.T) {
	var calls atomic.Int32
	var lastTimeout, lastGrade, lastBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b))
		lastTimeout.Store(r.Header.Get(TimeoutHeader))
		lastGrade.Store(r.Header.Get(GradeHeader))
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	// A stopped clock: a detection period ending mid-test would recompute
	// the budget from this test's failures and deny a retry it counts on.
	t0 := time.Now()
	w, _ := NewRetryWindow(RetryWindowConfig{Name: "w", Now: func() time.Time { return t0 }})
	w.f = 10 // a healthy peer's budget
	br, _ := NewBreaker(BreakerConfig{Name: "b", ConsecutiveFailures: 5})
	to, _ := NewDynamicTimeout(TimeoutConfig{Initial: 2 * time.Second, Name: "t"})
	p := Policy{Breaker: br, Timeout: to, Retry: &Retry{Window: w, MaxAttempts: 3, Sleep: noSleep}}
	c := &http.Client{Transport: Transport(nil, p, 1)}

	req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("payload"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body) // read after RoundTrip returned: the attempt's context still lives
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" || calls.Load() != 3 {
		t.Fatalf("PUT: %d %q after %d calls; want 200 \"ok\" after 3", resp.StatusCode, b, calls.Load())
	}
	if lastBody.Load() != "payload" || lastGrade.Load() != "1" || lastTimeout.Load() == "" {
		t.Fatalf("third attempt: body %q grade %q timeout %q; want the body replayed, grade 1, a timeout", lastBody.Load(), lastGrade.Load(), lastTimeout.Load())
	}
	// a POST without Idempotency-Key is not retried: the 503 is the answer
	calls.Store(0)
	resp, err = c.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || calls.Load() != 1 {
		t.Fatalf("POST: %d after %d calls; want 503 after 1", resp.StatusCode, calls.Load())
	}
	// the server keeps failing: a GET makes 3 attempts (failures 2…4 in a
	// row), a POST one more, and the fifth opens the breaker
	calls.Store(-100)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(m, srv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := calls.Load(); n != -96 {
		t.Fatalf("%d calls of GET and POST; want 4", n+100)
	}
	if _, err := c.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "circuit breaker open") {
		t.Fatalf("GET with the breaker open: %v; want ErrOpen", err)
	}
}

func TestTransportDynamicTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	to, _ := NewDynamicTimeout(TimeoutConfig{Initial: 50 * time.Millisecond, Floor: 10 * time.Millisecond, Ceiling: 200 * time.Millisecond, Name: "t"})
	c := &http.Client{Transport: Transport(nil, Policy{Timeout: to}, 0)}
	_, err := c.Get(srv.URL)
	if !IsTimeout(err) {
		t.Fatalf("GET of a stuck server: %v; want a timeout", err)
	}
	if got := to.Timeout(); got != 100*time.Millisecond {
		t.Fatalf("timeout after one timed-out call: %v; want 100ms (elastic ×2)", got)
	}
}

func TestMiddleware(t *testing.T) {
	g, _ := NewGuard(GuardConfig{MaxInflight: 1, QueueBudget: 30 * time.Millisecond, Name: "m"})
	hold := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := Middleware(g, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-hold
		}
		io.WriteString(w, "ok")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		resp, err := http.Get(srv.URL + "/hold")
		if err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	<-entered
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	req.Header.Set(GradeHeader, "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "grade 2") {
		t.Fatalf("request behind a busy slot: %d Retry-After %q %q; want 429 naming grade 2", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// a proxy saw the request 1s ago: rejected before any wait
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	req.Header.Set(RequestStartHeader, "t="+itoa(int(time.Now().Add(-time.Second).UnixMicro())))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("request that waited 1s at the proxy: %d; want 429", resp.StatusCode)
	}
	close(hold)
	<-done
	resp, err = http.Get(srv.URL + "/x")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle server: %v %v; want 200", resp, err)
	}
	resp.Body.Close()
	srv.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
}

func TestRequestStart(t *testing.T) {
	f := func(in string, want time.Time) {
		t.Helper()
		if got := requestStart(in); !got.Equal(want) {
			t.Errorf("requestStart(%q) = %v; want %v", in, got, want)
		}
	}
	f("t=1700000000.5", time.Unix(1700000000, 5e8))
	f("t=1700000000123456", time.UnixMicro(1700000000123456))
	f("", time.Time{})
	f("t=-3", time.Time{})
	f("t=abc", time.Time{})
}

func FuzzRequestStart(f *testing.F) {
	for _, s := range []string{"t=1700000000.123", "t=1700000000123456", "", "t=", "t=1e400", "t=NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := requestStart(s); !got.IsZero() && got.Before(time.Unix(0, 0)) {
			t.Fatalf("requestStart(%q) = %v: before 1970", s, got)
		}
	})
}

func TestTransportLimiter(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	l, _ := NewLimiter(LimiterConfig{Rate: 0.001, Burst: 1, Name: "l"})
	c := &http.Client{Transport: Transport(nil, Policy{Limiter: l, Retry: &Retry{MaxAttempts: 3, Sleep: noSleep}}, 0)}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := c.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "rate limited") || calls.Load() != 1 {
		t.Fatalf("second GET with an empty bucket: %v after %d calls; want ErrRateLimited without a call or retry", err, calls.Load())
	}
}

// TestTransportTimeoutCoversHeadersOnly: the dynamic timeout bounds the
// wait for the response's headers; a body that streams for longer is read
// to its end.
func TestTransportTimeoutCoversHeadersOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(TimeoutHeader) == "" {
			http.Error(w, "no "+TimeoutHeader, http.StatusBadRequest)
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(700 * time.Millisecond)
		io.WriteString(w, "late body")
	}))
	defer srv.Close()
	to, _ := NewDynamicTimeout(TimeoutConfig{Initial: 400 * time.Millisecond, Name: "t"})
	c := &http.Client{Transport: Transport(nil, Policy{Timeout: to}, 0)}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != "late body" {
		t.Fatalf("GET: %d %q %v; want 200 \"late body\" read past the 400ms timeout", resp.StatusCode, b, err)
	}
}

// TestTransportCancelDuringBackoff: the caller gives up while the
// transport waits to retry a 503: it gets its context's error, not the
// discarded 503 with a dead body.
func TestTransportCancelDuringBackoff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Retry{MaxAttempts: 3, Sleep: func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }}
	c := &http.Client{Transport: Transport(nil, Policy{Retry: r}, 0)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET cancelled during the backoff: %d; want the context's error", resp.StatusCode)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("GET cancelled during the backoff: %v; want context.Canceled", err)
	}
}
