package sdk

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// initLines are the lines Init itself logs: without a dumps DSN, one saying
// panic dumps are off (the sink leaves it out, the metrics count it).
const initLines = 1

// Lines logged while the collector answers 503 are kept and delivered
// once it accepts again; shutdown waits for them.
func TestShippingSurvivesAnOutage(t *testing.T) {
	sk := newSink(t)
	sk.code = 503
	shutdown, err := Init(Config{Service: "s", Grade: 3, Collector: sk.srv.URL, ShipLogs: true, TracesDisabled: true,
		LogsFlushInterval: 10 * time.Millisecond, LogOutput: &syncBuffer{}, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	m := current.Load().m
	for i := 0; i < 100; i++ {
		Logger().Info("during the outage", "i", i)
	}
	time.Sleep(50 * time.Millisecond) // let a few sends fail
	sk.mu.Lock()
	sk.code = 0
	sk.mu.Unlock()
	Logger().Info("after the outage")
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := sk.shipped()
	if len(got) != 101 || !strings.Contains(got[0], `"i":0`) || !strings.Contains(got[100], "after the outage") {
		t.Errorf("shipped %d lines; want the 101 lines in order", len(got))
	}
	if n := testutil.ToFloat64(m.logsShipped); n != 101+initLines {
		t.Errorf("vigil_sdk_logs_shipped_total: got %v; want 101 and Init's", n)
	}
}

// A collector that never answers fills the bounded queue: further lines
// are dropped and counted, logging does not block, and shutdown reports
// what it could not deliver.
func TestShippingIsBounded(t *testing.T) {
	sk := newSink(t)
	sk.code = 503
	shutdown, err := Init(Config{Service: "s", Grade: 3, Collector: sk.srv.URL, ShipLogs: true, TracesDisabled: true,
		LogsQueueBytes: 64 << 10, LogOutput: &syncBuffer{}, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	m := current.Load().m
	pad := strings.Repeat("x", 1000)
	for i := 0; i < 200; i++ {
		Logger().Info(pad)
	}
	if n := testutil.ToFloat64(m.logsDropped.WithLabelValues("queue_full")); n < 100 {
		t.Errorf("vigil_sdk_logs_dropped_total{reason=queue_full}: got %v; want the lines beyond 64 KiB (over 100 of 200)", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "log lines not accepted") {
		t.Errorf("shutdown with the collector down: %v; want an error saying lines were not accepted", err)
	}
	dropped := testutil.ToFloat64(m.logsDropped.WithLabelValues("queue_full")) + testutil.ToFloat64(m.logsDropped.WithLabelValues("shutdown"))
	if dropped != 200+initLines {
		t.Errorf("dropped lines: got %v; want all 200 and Init's accounted for", dropped)
	}
}

// A batch the collector rejects as invalid (4xx) is dropped, counted, and
// does not hold up the lines after it.
func TestShippingDropsRejectedBatches(t *testing.T) {
	sk := newSink(t)
	sk.code = 400
	shutdown, err := Init(Config{Service: "s", Grade: 3, Collector: sk.srv.URL, ShipLogs: true, TracesDisabled: true,
		LogsFlushInterval: 10 * time.Millisecond, LogOutput: &syncBuffer{}, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	m := current.Load().m
	Logger().Info("rejected")
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(m.logsDropped.WithLabelValues("rejected")) < 1+initLines && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	sk.mu.Lock()
	sk.code = 0
	sk.mu.Unlock()
	Logger().Info("accepted")
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sk.shipped(); len(got) != 1 || !strings.Contains(got[0], "accepted") {
		t.Errorf("shipped %q; want only the line after the rejection", got)
	}
	if n := testutil.ToFloat64(m.logsDropped.WithLabelValues("rejected")); n != 1+initLines {
		t.Errorf("vigil_sdk_logs_dropped_total{reason=rejected}: got %v; want 1 and Init's", n)
	}
}

func (s *sink) logPosts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

// testShipper returns a shipper to sk with policy p, closed at the end.
func testShipper(t *testing.T, sk *sink, p shipPolicy) *shipper {
	t.Helper()
	m, err := newMetrics(Config{Service: "s", Grade: 3})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newShipper(sk.srv.URL+"/api/v1/logs", 1<<20, 5*time.Millisecond, m, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = s.close(ctx)
	})
	return s
}

// After ConsecutiveFailures failed posts the breaker opens, and the
// shipper stops posting to the collector while it is open.
func TestShippingBreakerStopsPosts(t *testing.T) {
	sk := newSink(t)
	sk.code = 503
	p := defaultShipPolicy()
	p.breaker = resilience.BreakerConfig{ConsecutiveFailures: 3, OpenFor: time.Hour}
	p.window.Period = time.Millisecond // grants every retry
	p.backoff = resilience.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	s := testShipper(t, sk, p)
	_, _ = s.Write([]byte(`{"msg":"x"}` + "\n"))
	for deadline := time.Now().Add(10 * time.Second); s.breaker.State() != resilience.Open; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the breaker did not open")
		}
	}
	opened := sk.logPosts()
	time.Sleep(100 * time.Millisecond) // some 20 backoff periods
	if got := sk.logPosts(); opened != 3 || got != 3 {
		t.Errorf("posts: %d when the breaker opened, %d later; want 3 (ConsecutiveFailures), then none", opened, got)
	}
}

// With the collector down, the adaptive retry window grants about one
// retry per period however short the backoff.
func TestShippingRetryWindowBoundsRetries(t *testing.T) {
	sk := newSink(t)
	sk.code = 503
	p := defaultShipPolicy()
	p.breaker = resilience.BreakerConfig{ConsecutiveFailures: 1 << 30, MinRequests: 1 << 30}
	p.window.Period = 200 * time.Millisecond
	p.backoff = resilience.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	s := testShipper(t, sk, p)
	start := time.Now()
	_, _ = s.Write([]byte(`{"msg":"x"}` + "\n"))
	time.Sleep(time.Second)
	periods := int(time.Since(start)/p.window.Period) + 2
	// The backoff alone (1 to 5 ms) would make a few hundred posts.
	if got := sk.logPosts(); got < 2 || got > 1+periods {
		t.Errorf("posts in %v: %d; want the first and at most one retry per %v period (%d)",
			time.Since(start).Round(time.Millisecond), got, p.window.Period, 1+periods)
	}
}
