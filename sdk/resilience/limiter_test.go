package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLimiter(t *testing.T) {
	clk := newFakeClock()
	l, err := NewLimiter(LimiterConfig{Rate: 10, Burst: 5, Name: "l", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		advance time.Duration
		asks    int
		want    int // allowed
	}
	for i, s := range []step{
		{0, 7, 5},                      // the full bucket
		{50 * time.Millisecond, 1, 0},  // half a token
		{50 * time.Millisecond, 2, 1},  // one
		{300 * time.Millisecond, 5, 3}, // three
		{10 * time.Second, 9, 5},       // never more than the burst
	} {
		clk.Add(s.advance)
		got := 0
		for range s.asks {
			if l.Allow() {
				got++
			}
		}
		if got != s.want {
			t.Fatalf("step %d: %d of %d allowed; want %d", i, got, s.asks, s.want)
		}
	}
	if a, r := testutil.ToFloat64(l.allowed), testutil.ToFloat64(l.rejected); a != 14 || r != 10 {
		t.Errorf("allowed %v rejected %v; want 14 and 10", a, r)
	}
	if _, err := NewLimiter(LimiterConfig{}); err == nil {
		t.Error("Rate 0 accepted")
	}
}

func TestLimiterWait(t *testing.T) {
	l, _ := NewLimiter(LimiterConfig{Rate: 1000, Burst: 1})
	ctx := context.Background()
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(ctx); err != nil { // about 1ms
		t.Fatal(err)
	}
	slow, _ := NewLimiter(LimiterConfig{Rate: 0.1, Burst: 1})
	slow.Allow()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := slow.Wait(ctx); err == nil {
		t.Fatal("Wait for a token 10s away with 1s left succeeded")
	}
	if slow.AllowN(1) {
		t.Fatal("a token appeared after the refused Wait: its reservation was not given back")
	}
}
