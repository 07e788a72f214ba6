package resilience

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBreakerStates walks the state machine step by step: each step is a
// clock advance, then calls with their outcomes, then the state expected.
func TestBreakerStates(t *testing.T) {
	type step struct {
		advance time.Duration
		calls   string // per call: s success, f failure, r rejected (ErrOpen expected)
		want    State
	}
	f := func(name string, steps []step) {
		t.Helper()
		clk := newFakeClock()
		b, err := NewBreaker(BreakerConfig{Window: 10 * time.Second, ConsecutiveFailures: 3, MinRequests: 10,
			FailureRatio: 0.5, OpenFor: 5 * time.Second, Probes: 2, Name: name, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range steps {
			clk.Add(s.advance)
			for j, c := range s.calls {
				tk, err := b.Allow()
				if c == 'r' {
					if !errors.Is(err, ErrOpen) {
						t.Fatalf("%s: step %d call %d: Allow = %v; want ErrOpen", name, i, j, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: step %d call %d: Allow = %v; want allowed", name, i, j, err)
				}
				b.Done(tk, c == 's')
			}
			if got := b.State(); got != s.want {
				t.Fatalf("%s: after step %d: state %v; want %v", name, i, got, s.want)
			}
		}
	}
	f("consecutive", []step{{0, "ssff", Closed}, {0, "f", Open}, {time.Second, "rr", Open}})
	f("ratio", []step{{0, "sfsfsfsfs", Closed}, {0, "f", Open}}) // 5 of 10 failed
	f("window resets counts", []step{{0, "sfsfsfsff", Closed}, {10 * time.Second, "s", Closed}, {0, "sff", Closed}})
	f("probes close", []step{{0, "fff", Open}, {5 * time.Second, "s", HalfOpen}, {0, "s", Closed}, {0, "ss", Closed}})
	f("failed probe reopens", []step{{0, "fff", Open}, {5 * time.Second, "sf", Open}, {4 * time.Second, "r", Open}, {time.Second, "ss", Closed}})
}

func TestBreakerProbeLimit(t *testing.T) {
	clk := newFakeClock()
	reg := prometheus.NewRegistry()
	b, _ := NewBreaker(BreakerConfig{ConsecutiveFailures: 1, OpenFor: time.Second, Probes: 2, Name: "p", Registerer: reg, Now: clk.Now})
	tk, _ := b.Allow()
	b.Done(tk, false)
	clk.Add(time.Second)
	t1, err1 := b.Allow()
	t2, err2 := b.Allow()
	_, err3 := b.Allow()
	if err1 != nil || err2 != nil || !errors.Is(err3, ErrOpen) {
		t.Fatalf("half-open with 2 probes: Allow = %v, %v, %v; want nil, nil, ErrOpen", err1, err2, err3)
	}
	b.Done(t1, true)
	b.Done(t2, true)
	if s := b.State(); s != Closed {
		t.Fatalf("after 2 successful probes: %v; want closed", s)
	}
	// a result from an older generation is ignored
	old, _ := b.Allow()
	for range 1 {
		tk, _ := b.Allow()
		b.Done(tk, false)
	}
	clk.Add(time.Second)
	b.Done(old, true)
	if s := b.State(); s != HalfOpen {
		t.Fatalf("stale success changed the state to %v; want half-open", s)
	}
	if v := testutil.ToFloat64(b.rejected); v != 1 {
		t.Errorf("vigil_resilience_breaker_rejected_total = %v; want 1", v)
	}
	if v := testutil.ToFloat64(b.transitions.WithLabelValues("open")); v != 2 {
		t.Errorf("transitions to open = %v; want 2", v)
	}
}
