package dump_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/dump"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// deadDSN points at a port nothing listens on.
func deadDSN(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://public@" + addr + "/42"
}

func panicAndRecover(rep *dump.Reporter) (id string) {
	defer func() { id = rep.Recovered(context.Background(), recover(), nil, nil) }()
	crashNilMap()
	return ""
}

func spooled(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.envelope"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// metric returns a counter's or gauge's value from a registry.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// failingIntake starts a receiver answering status and a Reporter
// sending to it.
func failingIntake(t *testing.T, status int) (*receiver, *prometheus.Registry, string, *dump.Reporter) {
	rc := newReceiver(t)
	rc.Fail(status, nil)
	reg := prometheus.NewRegistry()
	spool := t.TempDir()
	rep := newReporter(t, rc, spool, func(o *dump.Options) { o.Registerer = reg })
	return rc, reg, spool, rep
}

// An intake that answers 503 loses nothing: the reports wait in the spool
// and go out once it is back.
func TestIntakeUnavailableThenBack(t *testing.T) {
	rc, reg, spool, rep := failingIntake(t, http.StatusServiceUnavailable)
	var ids []string
	for range 3 {
		ids = append(ids, panicAndRecover(rep))
	}
	waitFor(t, func() bool { _, posts := rc.Snapshot(); return posts >= 3 })
	if n := len(spooled(t, spool)); n != 3 {
		t.Fatalf("while the intake fails: %d reports spooled, want 3", n)
	}
	if got := metric(t, reg, "vigil_sdk_dumps_spooled"); got != 3 {
		t.Errorf("vigil_sdk_dumps_spooled: got %v, want 3", got)
	}
	if got := metric(t, reg, "vigil_sdk_dumps_send_failures_total", "reason", "server"); got < 1 {
		t.Errorf("vigil_sdk_dumps_send_failures_total{reason=server}: got %v, want > 0", got)
	}
	rc.Fail(0, nil)
	flush(t, rep)
	events, _ := rc.Snapshot()
	for _, id := range ids {
		if events[id] == nil {
			t.Errorf("event %s not delivered", id)
		}
	}
	if len(events) != 3 || len(spooled(t, spool)) != 0 {
		t.Errorf("got %d events and %d spooled, want 3 and 0", len(events), len(spooled(t, spool)))
	}
	if got := metric(t, reg, "vigil_sdk_dumps_sent_total"); got != 3 {
		t.Errorf("vigil_sdk_dumps_sent_total: got %v, want 3", got)
	}
}

// Reports spooled while the intake is unreachable are delivered by the
// next process using the spool directory.
func TestSpoolSurvivesRestart(t *testing.T) {
	spool := t.TempDir()
	down := newReceiver(t)
	first := newReporter(t, down, spool, func(o *dump.Options) { o.DSN = deadDSN(t) })
	var ids []string
	for range 3 {
		ids = append(ids, panicAndRecover(first))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := first.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "3 reports still spooled") {
		t.Errorf("Flush with the intake down: got %v, want 3 reports still spooled", err)
	}
	first.Close()

	rc := newReceiver(t)
	second := newReporter(t, rc, spool, nil)
	flush(t, second)
	events, _ := rc.Snapshot()
	for _, id := range ids {
		if events[id] == nil {
			t.Errorf("event %s of the first process not delivered by the second", id)
		}
	}
	if len(events) != 3 {
		t.Errorf("got %d events, want 3", len(events))
	}
}

// The spool stays within MaxSpoolBytes by dropping the oldest reports,
// and counts them.
func TestSpoolBounded(t *testing.T) {
	spool := t.TempDir()
	rc := newReceiver(t)
	dead := func(o *dump.Options) { o.DSN = deadDSN(t); o.MaxGoroutines = 1 }
	measure := newReporter(t, rc, spool, dead)
	panicAndRecover(measure)
	measure.Close()
	files := spooled(t, spool)
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(files[0])
	limit := fi.Size()*5/2 + 200 // room for two reports, not three

	reg := prometheus.NewRegistry()
	rep := newReporter(t, rc, spool, func(o *dump.Options) { dead(o); o.MaxSpoolBytes = limit; o.Registerer = reg })
	var ids []string
	for range 5 {
		ids = append(ids, panicAndRecover(rep))
	}
	var total int64
	var kept []string
	for _, f := range spooled(t, spool) {
		fi, _ := os.Stat(f)
		total += fi.Size()
		kept = append(kept, strings.TrimSuffix(filepath.Base(f)[21:], ".envelope"))
	}
	if total > limit {
		t.Errorf("spool holds %d bytes, limit %d", total, limit)
	}
	if !slices.Equal(kept, ids[3:]) {
		t.Errorf("kept %v, want the newest two %v", kept, ids[3:])
	}
	if got := metric(t, reg, "vigil_sdk_dumps_dropped_total", "reason", "spool_full"); got != 3 {
		t.Errorf("vigil_sdk_dumps_dropped_total{reason=spool_full}: got %v, want 3", got)
	}
	rep.Close()

	// A report larger than the whole spool is refused and counted.
	reg = prometheus.NewRegistry()
	tiny := newReporter(t, rc, t.TempDir(), func(o *dump.Options) { dead(o); o.MaxSpoolBytes = 100; o.Registerer = reg })
	panicAndRecover(tiny)
	if got := metric(t, reg, "vigil_sdk_dumps_dropped_total", "reason", "too_large"); got != 1 {
		t.Errorf("vigil_sdk_dumps_dropped_total{reason=too_large}: got %v, want 1", got)
	}
}

// A 429 stops deliveries for as long as the intake asks.
func TestRateLimitHonoured(t *testing.T) {
	for _, h := range []http.Header{
		{"Retry-After": {"1"}},
		{"X-Sentry-Rate-Limits": {"1:error;transaction:organization"}},
	} {
		rc := newReceiver(t)
		rc.Fail(http.StatusTooManyRequests, h)
		rep := newReporter(t, rc, t.TempDir(), nil)
		limited := time.Now()
		id := panicAndRecover(rep)
		waitFor(t, func() bool { _, posts := rc.Snapshot(); return posts >= 1 })
		rc.Fail(0, nil)
		flush(t, rep)
		if waited := time.Since(limited); waited < time.Second {
			t.Errorf("%v: delivered after %v, want no retry before the 1 s the intake asked", h, waited)
		}
		if events, posts := rc.Snapshot(); events[id] == nil || posts != 2 {
			t.Errorf("%v: delivered %v in %d requests, want in 2", h, events[id] != nil, posts)
		}
		rep.Close()
	}
}

// A report the intake refuses for good (4xx) is dropped, counted, and not
// retried.
func TestRejectedReportDropped(t *testing.T) {
	rc, reg, spool, rep := failingIntake(t, http.StatusBadRequest)
	panicAndRecover(rep)
	flush(t, rep)
	if got := metric(t, reg, "vigil_sdk_dumps_dropped_total", "reason", "rejected"); got != 1 {
		t.Errorf("vigil_sdk_dumps_dropped_total{reason=rejected}: got %v, want 1", got)
	}
	if _, posts := rc.Snapshot(); posts != 1 || len(spooled(t, spool)) != 0 {
		t.Errorf("%d requests, %d spooled; want 1 and 0", posts, len(spooled(t, spool)))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// After ConsecutiveFailures failed deliveries the breaker opens: the
// reporter stops posting to the intake while it is open, and its state is
// in the metrics.
func TestBreakerStopsPosts(t *testing.T) {
	rc := newReceiver(t)
	rc.Fail(http.StatusServiceUnavailable, nil)
	reg := prometheus.NewRegistry()
	rep := newReporter(t, rc, t.TempDir(), func(o *dump.Options) {
		o.Registerer = reg
		o.Breaker = resilience.BreakerConfig{ConsecutiveFailures: 3, OpenFor: time.Hour}
		o.RetryWindow.Period = time.Millisecond // grants every retry
	})
	panicAndRecover(rep)
	waitFor(t, func() bool { return metric(t, reg, "vigil_resilience_breaker_state", "state", "open") == 1 })
	_, opened := rc.Snapshot()
	time.Sleep(100 * time.Millisecond) // many backoff periods
	if _, posts := rc.Snapshot(); opened != 3 || posts != 3 {
		t.Errorf("posts: %d when the breaker opened, %d later; want 3 (ConsecutiveFailures), then none", opened, posts)
	}
}

// With the intake down, the adaptive retry window grants about one retry
// per period however short the backoff.
func TestRetryWindowBoundsRetries(t *testing.T) {
	rc := newReceiver(t)
	rc.Fail(http.StatusServiceUnavailable, nil)
	period := 200 * time.Millisecond
	rep := newReporter(t, rc, t.TempDir(), func(o *dump.Options) {
		o.Breaker = resilience.BreakerConfig{ConsecutiveFailures: 1 << 30, MinRequests: 1 << 30}
		o.RetryWindow.Period = period
	})
	start := time.Now()
	panicAndRecover(rep)
	time.Sleep(time.Second)
	periods := int(time.Since(start)/period) + 2
	// The backoff alone (10 to 50 ms) would make some 30 posts.
	if _, posts := rc.Snapshot(); posts < 2 || posts > 1+periods {
		t.Errorf("posts in %v: %d; want the first and at most one retry per %v period (%d)",
			time.Since(start).Round(time.Millisecond), posts, period, 1+periods)
	}
}
