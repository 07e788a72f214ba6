package es

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff shapes the waits between retries: exponential from Base, capped
// at Max, with jitter over the upper half so that clients that failed
// together do not retry together.
type Backoff struct {
	Base, Max time.Duration
}

// Delay returns the wait before attempt+1 (attempt counts from 1).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base << min(max(attempt-1, 0), 30)
	if d > b.Max || d <= 0 {
		d = max(b.Max, 0)
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx ends, whose error it then returns.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
