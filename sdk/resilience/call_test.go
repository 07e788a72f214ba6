package resilience

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPolicyCall(t *testing.T) {
	clock := newFakeClock()
	br, _ := NewBreaker(BreakerConfig{Name: "t", ConsecutiveFailures: 2, OpenFor: time.Second, Probes: 1, Now: clock.Now})
	win, _ := NewRetryWindow(RetryWindowConfig{Name: "t", Now: clock.Now})
	to, _ := NewDynamicTimeout(TimeoutConfig{Name: "t", Initial: 50 * time.Millisecond, Floor: 10 * time.Millisecond, Ceiling: 50 * time.Millisecond})
	noSleep := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	p := Policy{Breaker: br, Timeout: to, Retry: &Retry{Window: win, MaxAttempts: 3, Sleep: noSleep}}
	ctx := context.Background()
	down := errors.New("peer down")

	calls := 0
	fail := func(context.Context) error { calls++; return down }
	// One attempt, one retry granted (budget 1), the next denied.
	err := p.Call(ctx, fail)
	if !errors.Is(err, down) || !errors.Is(err, ErrRetryBudget) || calls != 2 {
		t.Fatalf("got calls %d, err %v; want 2 calls and the peer's error with ErrRetryBudget", calls, err)
	}
	// Two failures in a row opened the breaker: fail fast, fn not called.
	calls = 0
	if err := p.Call(ctx, fail); !errors.Is(err, ErrOpen) || calls != 0 {
		t.Fatalf("while open: got calls %d, err %v; want 0 calls and ErrOpen", calls, err)
	}
	// After OpenFor one probe closes it again.
	clock.Add(time.Second)
	if err := p.Call(ctx, func(context.Context) error { calls++; return nil }); err != nil || calls != 1 || br.State() != Closed {
		t.Fatalf("probe: got calls %d, err %v, state %v; want 1 call, nil, closed", calls, err, br.State())
	}
	// An attempt runs under the dynamic timeout; a refusal (Permanent) is
	// returned unretried and does not count against the peer.
	for range 3 {
		calls = 0
		err = p.Call(ctx, func(ctx context.Context) error {
			calls++
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the attempt's context has no deadline")
			}
			return Permanent(down)
		})
		if !errors.Is(err, down) || errors.Is(err, ErrRetryBudget) || calls != 1 {
			t.Fatalf("permanent: got %d calls, %v; want 1 call and the error without a retry", calls, err)
		}
	}
	if br.State() != Closed {
		t.Errorf("after 3 refusals: breaker %v, want closed", br.State())
	}
	// A call whose context ended does not count against the peer either.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for range 3 {
		if err := p.Call(cctx, func(ctx context.Context) error { return ctx.Err() }); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: got %v, want context.Canceled", err)
		}
	}
	if br.State() != Closed {
		t.Errorf("after 3 cancelled calls: breaker %v, want closed", br.State())
	}
}
