// Package backoff paces retries: exponentially growing waits between a
// minimum and a maximum, optionally with jitter, and a sleep that ends with
// its context. Every retry loop in Vigil draws its waits from here.
//
// It is Vigil's own rather than github.com/cenkalti/backoff: that library
// spreads its jitter on both sides of the interval and lets waits exceed
// MaxInterval, while Vigil's retry options promise waits within [Min, Max],
// and its retry loops (forever, counting every attempt in metrics, also
// stopping on a close channel) do not fit its Retry function.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields the waits between attempts of one operation. The wait
// after attempt n is drawn uniformly from [d-Jitter×d, d], where d is Min
// doubled n-1 times and capped at Max: Jitter 0 waits exactly d, 0.5
// ("equal jitter") at least half of it, so that clients that failed
// together do not retry together.
//
// The zero value of the attempt counter starts at the first attempt; a
// Backoff is not safe for concurrent use (copy it per operation).
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64 // in [0, 1]

	attempt int
}

// Next returns the wait after the next failed attempt.
func (b *Backoff) Next() time.Duration {
	b.attempt++
	return b.Delay(b.attempt)
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Delay returns the wait after failed attempt n (counted from 1), without
// changing b.
func (b Backoff) Delay(n int) time.Duration {
	d, shift := b.Max, min(max(n-1, 0), 62)
	if b.Min <= b.Max>>shift {
		d = b.Min << shift
	}
	if d <= 0 {
		return 0
	}
	span := time.Duration(float64(d) * b.Jitter)
	if span <= 0 {
		return d
	}
	return d - span + rand.N(span+1) // #nosec G404 -- jitter of a retry delay, not a secret
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
