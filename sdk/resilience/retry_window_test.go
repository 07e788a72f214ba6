package resilience

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNextRetryWindow(t *testing.T) {
	f := func(fi, g, total int, s float64, want int) {
		t.Helper()
		if got := NextRetryWindow(fi, g, total, s); got != want {
			t.Errorf("NextRetryWindow(f=%d, g=%d, t=%d, s=%v) = %d; want %d", fi, g, total, s, got, want)
		}
	}
	// healthy and the budget used up: + max(min(1% t, f), 1)
	f(1, 1, 1000, 1, 2)
	f(2, 2, 1000, 0.99, 4)
	f(16, 16, 1000, 0.98, 26) // 1% of 1000 = 10 < 16
	f(16, 20, 1000, 1, 26)
	f(5, 5, 50, 1, 6) // 1% of 50 rounds down to 0: at least 1
	f(5, 5, 0, 1, 6)
	// healthy, budget not used up: kept
	f(16, 15, 1000, 1, 16)
	f(1, 0, 10, 0.98, 1)
	// worse than 98 %: halved, not below 1
	f(16, 16, 1000, 0.9799, 8)
	f(17, 0, 1000, 0.5, 8)
	f(1, 1, 1000, 0, 1)
	f(3, 3, 1000, 0.97, 1)
	// out of range
	f(0, 0, 0, 1, 1)
	f(8, 8, 100, 1.5, 4)
}

// TestRetryWindowSequence drives the bookkeeping period by period: 1000
// requests per period and a demand of 100 retries; then a failure.
func TestRetryWindowSequence(t *testing.T) {
	clk := newFakeClock()
	reg := prometheus.NewRegistry()
	w, err := NewRetryWindow(RetryWindowConfig{Period: time.Second, Name: "peer", Registerer: reg, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Unix(0, 0).Add(1000 * time.Hour)) // a period boundary
	period := func(total, okCount, demand int) (budget, granted int) {
		budget = w.Budget()
		for i := range total {
			w.Record(i < okCount)
		}
		for range demand {
			if w.TryRetry() {
				granted++
			}
		}
		clk.Add(time.Second)
		return budget, granted
	}
	var got []int
	for range 15 {
		b, g := period(1000, 990, 100) // s = 99 %
		if g != min(b, 100) {
			t.Fatalf("period with budget %d granted %d retries of 100 asked; want %d", b, g, min(b, 100))
		}
		got = append(got, b)
	}
	for range 7 {
		b, _ := period(1000, 500, 100) // s = 50 %
		got = append(got, b)
	}
	for range 3 {
		b, _ := period(0, 0, 0) // idle: kept
		got = append(got, b)
	}
	want := []int{1, 2, 4, 8, 16, 26, 36, 46, 56, 66, 76, 86, 96, 106, 106, 106, 53, 26, 13, 6, 3, 1, 1, 1, 1}
	if !slices.Equal(got, want) {
		t.Errorf("budgets\n got %v\nwant %v", got, want)
	}
	if v := testutil.ToFloat64(w.budget); v != 1 {
		t.Errorf("vigil_resilience_retry_budget = %v; want 1", v)
	}
	if v := testutil.ToFloat64(w.denied); v == 0 {
		t.Error("vigil_resilience_retries_total{decision=denied} = 0; want the retries refused")
	}
}

func TestDo(t *testing.T) {
	w, _ := NewRetryWindow(RetryWindowConfig{Now: newFakeClock().Now})
	var slept []time.Duration
	r := &Retry{Window: w, MaxAttempts: 4, Backoff: Backoff{Base: 10 * time.Millisecond, Max: 25 * time.Millisecond},
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	boom := errors.New("boom")

	calls := 0
	v, err := Do(context.Background(), r, func(context.Context) (int, error) {
		calls++
		if calls < 2 {
			return 0, boom
		}
		return 42, nil
	})
	if v != 42 || err != nil || calls != 2 {
		t.Fatalf("Do = %d, %v after %d calls; want 42, nil after 2", v, err, calls)
	}
	// budget 1 is used up: the next failure is not retried
	calls = 0
	_, err = Do(context.Background(), r, func(context.Context) (int, error) { calls++; return 0, boom })
	if !errors.Is(err, boom) || !errors.Is(err, ErrRetryBudget) || calls != 1 {
		t.Fatalf("Do with the budget used up = %v after %d calls; want boom and ErrRetryBudget after 1", err, calls)
	}
	// no window: MaxAttempts, backoff doubling up to Max
	r.Window, slept, calls = nil, nil, 0
	_, err = Do(context.Background(), r, func(context.Context) (int, error) { calls++; return 0, boom })
	if !errors.Is(err, boom) || calls != 4 || !slices.Equal(slept, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond}) {
		t.Fatalf("Do = %v after %d calls, slept %v; want boom after 4, slept [10ms 20ms 25ms]", err, calls, slept)
	}
	// permanent errors are not retried
	calls = 0
	_, err = Do(context.Background(), r, func(context.Context) (int, error) { calls++; return 0, Permanent(boom) })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Do(Permanent) = %v after %d calls; want boom after 1", err, calls)
	}
}

func TestBackoffJitter(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	for n := 1; n <= 6; n++ {
		hi := min(100*time.Millisecond<<(n-1), time.Second)
		for range 50 {
			if d := b.Delay(n); d < hi/2 || d > hi {
				t.Fatalf("Delay(%d) = %v; want within [%v, %v]", n, d, hi/2, hi)
			}
		}
	}
}
