package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	f := func(name string, b Backoff, want []struct{ lo, hi time.Duration }) {
		t.Helper()
		for round := range 50 {
			b := b
			for i, w := range want {
				if got := b.Next(); got < w.lo || got > w.hi {
					t.Fatalf("%s, round %d, wait %d: got %v; want within [%v, %v]", name, round, i+1, got, w.lo, w.hi)
				}
			}
		}
	}
	type r = struct{ lo, hi time.Duration }
	ms := time.Millisecond
	// Equal jitter: the upper half of 100ms, 200ms, ... capped at 5s.
	f("equal jitter", Backoff{Min: 100 * ms, Max: 5 * time.Second, Jitter: 0.5}, []r{
		{50 * ms, 100 * ms}, {100 * ms, 200 * ms}, {200 * ms, 400 * ms}, {400 * ms, 800 * ms}, {800 * ms, 1600 * ms},
		{1600 * ms, 3200 * ms}, {2500 * ms, 5000 * ms}, {2500 * ms, 5000 * ms},
	})
	// Up to half more than 100ms, 200ms, ... capped at 10s.
	f("a third", Backoff{Min: 150 * ms, Max: 15 * time.Second, Jitter: 1.0 / 3}, []r{
		{100 * ms, 150 * ms}, {200 * ms, 300 * ms}, {400 * ms, 600 * ms},
	})
	f("no jitter", Backoff{Min: time.Second, Max: 30 * time.Second}, []r{
		{time.Second, time.Second}, {2 * time.Second, 2 * time.Second}, {4 * time.Second, 4 * time.Second},
		{8 * time.Second, 8 * time.Second}, {16 * time.Second, 16 * time.Second}, {30 * time.Second, 30 * time.Second},
	})
	f("zero", Backoff{}, []r{{0, 0}, {0, 0}})

	b := Backoff{Min: ms, Max: time.Second}
	b.Next()
	b.Next()
	b.Reset()
	if got := b.Next(); got != ms {
		t.Errorf("after Reset: got %v; want %v", got, ms)
	}
}

func TestDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	for _, c := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{100, 500 * time.Millisecond, time.Second},
		{1 << 40, 500 * time.Millisecond, time.Second},
	} {
		for range 50 {
			if d := b.Delay(c.attempt); d < c.min || d > c.max {
				t.Fatalf("Delay(%d) = %s; want within [%s, %s]", c.attempt, d, c.min, c.max)
			}
		}
	}
	// A large Min shifted far must not overflow into a short wait.
	big := Backoff{Min: time.Hour, Max: 1<<62 - 1}
	if d := big.Delay(40); d != big.Max {
		t.Errorf("Delay(40) of 1h doubling: got %v; want the cap %v", d, big.Max)
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Errorf("Sleep with a cancelled context: got %v; want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep: got %v; want nil", err)
	}
}
