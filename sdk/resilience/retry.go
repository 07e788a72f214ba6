package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff spaces retries: attempt n (1 for the first retry) waits a
// uniformly random time in [(1-Jitter)·d, d] where d = min(Base·2^(n-1), Max).
type Backoff struct {
	Base, Max time.Duration
	// Jitter is the random fraction of each wait, 0…1 (1 = "full jitter").
	Jitter float64
}

// DefaultBackoff is 50ms doubling up to 2s with full jitter.
func DefaultBackoff() Backoff {
	return Backoff{Base: 50 * time.Millisecond, Max: 2 * time.Second, Jitter: 1}
}

// Delay returns the wait before retry n (n ≥ 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	j := min(max(b.Jitter, 0), 1)
	if j == 0 || d <= 0 {
		return d
	}
	return d - time.Duration(rand.Float64()*j*float64(d)) // #nosec G404 -- jitter of a retry delay, not a secret
}

// Retry is a retry policy: at most MaxAttempts attempts in all, spaced by
// Backoff, each retry granted by Window (when set; unlimited otherwise).
type Retry struct {
	Window      *RetryWindow
	MaxAttempts int
	Backoff     Backoff
	// Retryable decides which errors are retried; nil retries every error
	// but context cancellation and errors wrapped by Permanent.
	Retryable func(error) bool
	// Sleep waits d or until ctx ends (a simulated clock replaces it).
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultRetry returns 3 attempts with DefaultBackoff through w.
func DefaultRetry(w *RetryWindow) *Retry {
	return &Retry{Window: w, MaxAttempts: 3, Backoff: DefaultBackoff()}
}

// ErrRetryBudget wraps the last error of a call whose retry the adaptive
// retry window denied.
var ErrRetryBudget = errors.New("retry denied: the adaptive retry window's budget for this period is used up")

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return permanent{err} }

func (r *Retry) retryable(err error) bool {
	var p permanent
	if errors.As(err, &p) || errors.Is(err, context.Canceled) {
		return false
	}
	if r.Retryable != nil {
		return r.Retryable(err)
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do calls fn until it succeeds, returns a non-retryable error, the
// attempts are used up, the window denies a retry (the error then wraps
// ErrRetryBudget too) or ctx ends. Every attempt is recorded in r.Window.
func Do[T any](ctx context.Context, r *Retry, fn func(ctx context.Context) (T, error)) (T, error) {
	attempts := max(r.MaxAttempts, 1)
	sleep := r.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for n := 1; ; n++ {
		v, err := fn(ctx)
		if r.Window != nil {
			r.Window.Record(err == nil)
		}
		if err == nil || n >= attempts || !r.retryable(err) || ctx.Err() != nil {
			return v, err
		}
		if r.Window != nil && !r.Window.TryRetry() {
			return v, errors.Join(err, ErrRetryBudget)
		}
		if serr := sleep(ctx, r.Backoff.Delay(n)); serr != nil {
			return v, errors.Join(err, serr)
		}
	}
}
