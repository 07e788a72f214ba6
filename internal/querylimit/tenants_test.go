package querylimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// acquireAsync starts Acquire(key) and returns where its result arrives.
func acquireAsync(l *Limiter, key string) <-chan func() {
	c := make(chan func(), 1)
	go func() {
		release, err := l.Acquire(context.Background(), key)
		if err != nil {
			release = nil
		}
		c <- release
	}()
	return c
}

// A storm under one key fills that key's queue and is refused past it,
// while another key's query, queued behind it, gets the next free slot
// ahead of the storm's queued queries.
func TestStormOfOneKeyDoesNotStarveAnother(t *testing.T) {
	l := New(Options{MaxConcurrent: 1, MaxQueued: 2, QueueTimeout: time.Hour})
	runA, err := l.Acquire(context.Background(), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	a1, a2 := acquireAsync(l, "team-a"), acquireAsync(l, "team-a")
	waitFor(t, func() bool { return testutil.ToFloat64(l.m.waiting) == 2 })

	_, err = l.Acquire(context.Background(), "team-a")
	var re *RefusedError
	if !errors.As(err, &re) || re.Reason != ReasonQueueFull {
		t.Fatalf("team-a past its queue: got %v, want a queue_full refusal", err)
	}
	if !strings.Contains(err.Error(), `tenant "team-a"`) || !strings.Contains(err.Error(), "--query.max-queued=2") {
		t.Errorf("got %q, want the tenant and --query.max-queued named", err)
	}

	// team-b has a queue of its own, and the next slot.
	b := acquireAsync(l, "team-b")
	waitFor(t, func() bool { return testutil.ToFloat64(l.m.waiting) == 3 })
	runA()
	runB := <-b
	if runB == nil {
		t.Fatal("team-b was refused")
	}
	select {
	case <-a1:
		t.Fatal("a queued team-a query ran before team-b's, which arrived later but runs nothing")
	case <-a2:
		t.Fatal("a queued team-a query ran before team-b's, which arrived later but runs nothing")
	default:
	}
	// The process stays bounded: team-b's query holds the only slot.
	if got := testutil.ToFloat64(l.m.inFlight); got != 1 {
		t.Errorf("in flight: got %v, want 1", got)
	}
	runB()
	// The two queued team-a queries run one after the other, in whichever
	// order their goroutines queued.
	for range 2 {
		select {
		case run := <-a1:
			run()
		case run := <-a2:
			run()
		}
	}
	if got := testutil.ToFloat64(l.m.refused.WithLabelValues(ReasonQueueFull)); got != 1 {
		t.Errorf("refused{queue_full}: got %v, want 1", got)
	}
	if n := len(l.per); n != 0 {
		t.Errorf("keys remembered after all queries ended: got %d, want 0", n)
	}
}

// With a per-key share below the total, another key finds a free slot at
// once while one key is at its share; the total still bounds everyone.
func TestPerKeyShare(t *testing.T) {
	l := New(Options{MaxConcurrent: 2, MaxConcurrentPerKey: 1, MaxQueued: 1, QueueTimeout: 20 * time.Millisecond})
	runA, err := l.Acquire(context.Background(), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	defer runA()
	_, err = l.Acquire(context.Background(), "team-a")
	var re *RefusedError
	if !errors.As(err, &re) || re.Reason != ReasonQueueTimeout || !strings.Contains(err.Error(), "--query.max-concurrent-per-tenant=1") {
		t.Fatalf("team-a over its share: got %v, want a queue_timeout naming --query.max-concurrent-per-tenant=1", err)
	}
	runB, err := l.Acquire(context.Background(), "team-b")
	if err != nil {
		t.Fatalf("team-b while team-a is at its share: %v", err)
	}
	defer runB()
	_, err = l.Acquire(context.Background(), "team-c")
	if !errors.As(err, &re) || re.Reason != ReasonQueueTimeout || !strings.Contains(err.Error(), "--query.max-concurrent=2") {
		t.Fatalf("team-c with every slot taken: got %v, want a queue_timeout naming --query.max-concurrent=2", err)
	}
}

// A key's own range limit replaces --query.max-range for its queries,
// shorter or longer; keys without one keep the flag's.
func TestKeyMaxRange(t *testing.T) {
	l := New(Options{MaxRange: 24 * time.Hour, KeyMaxRange: func(key string) time.Duration {
		switch key {
		case "team-a":
			return time.Hour
		case "team-c":
			return 48 * time.Hour
		}
		return 0
	}})
	t0 := time.Unix(1e9, 0)
	f := func(key string, d time.Duration, want string) {
		t.Helper()
		err := CheckRange(l.WithKeyLimits(context.Background(), key), t0, t0.Add(d))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s, %s: got %v, want it allowed", key, d, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s, %s: got %v, want an error containing %q", key, d, err, want)
		}
		if code, ok := StatusOf(err); want != "" && (!ok || code != http.StatusBadRequest) {
			t.Errorf("%s, %s: got status %d, want 400", key, d, code)
		}
	}
	f("team-a", time.Hour, "")
	f("team-a", 2*time.Hour, `query time range 2h exceeds the limit of 1h of tenant "team-a" (max_query_range in --auth.config)`)
	f("team-b", 24*time.Hour, "")
	f("team-b", 25*time.Hour, "query time range 1d1h exceeds the limit of 1d (--query.max-range)")
	f("team-c", 47*time.Hour, "")
	if got := testutil.ToFloat64(l.m.refused.WithLabelValues(ReasonRange)); got != 2 {
		t.Errorf("refused{range}: got %v, want 2", got)
	}

	// Through the handler, with the key of the request.
	l.o.Key = func(r *http.Request) string { return r.Header.Get("X-Scope-OrgID") }
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := CheckRange(r.Context(), t0, t0.Add(2*time.Hour)); err != nil {
			WriteError(w, r, http.StatusBadRequest, err)
		}
	}))
	for key, want := range map[string]int{"team-a": 400, "team-b": 200} {
		req := httptest.NewRequest("GET", "/loki/api/v1/query_range", nil)
		req.Header.Set("X-Scope-OrgID", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("%s through the handler: got %d %s, want %d", key, w.Code, w.Body, want)
		}
	}
}
