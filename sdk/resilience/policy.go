package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy is what a client applies to every call to one peer; a nil piece
// is skipped. Each attempt takes a token of Limiter, passes Breaker, and
// runs under Timeout's current value (or the caller's deadline when
// nearer); Retry decides about retries, through its adaptive window.
type Policy struct {
	Limiter *Limiter
	Breaker *Breaker
	Timeout *DynamicTimeout
	Retry   *Retry
}

// ErrRateLimited is returned when the Policy's Limiter has no token.
var ErrRateLimited = errors.New("rate limited: the client's token bucket is empty")

// attempt runs one attempt of call under the policy; ok classifies its
// outcome for the breaker, the timeout and the window (a 503 answer is a
// failure even though the call returned no error). The returned cancel
// ends the attempt's context: the caller calls it once it is done with
// the attempt's result (an HTTP response body is read after the call).
func (p *Policy) attempt(ctx context.Context, call func(ctx context.Context) (ok bool, err error)) (bool, context.CancelFunc, error) {
	if p.Limiter != nil && !p.Limiter.Allow() {
		return false, noCancel, ErrRateLimited
	}
	var t Ticket
	if p.Breaker != nil {
		var err error
		if t, err = p.Breaker.Allow(); err != nil {
			return false, noCancel, err
		}
	}
	actx, cancel := ctx, noCancel
	if p.Timeout != nil {
		actx, cancel = context.WithTimeout(ctx, p.Timeout.Timeout())
	}
	start := time.Now()
	ok, err := call(actx)
	if p.Timeout != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			p.Timeout.ObserveTimeout()
		case err == nil:
			p.Timeout.Observe(time.Since(start))
		}
	}
	if p.Breaker != nil {
		p.Breaker.Done(t, ok && err == nil)
	}
	return ok, cancel, err
}

func noCancel() {}

// retryLoop runs attempts until one succeeds or Retry says stop; retry
// reports whether an attempt's outcome is worth retrying at all. call's
// n counts attempts from 1; cancel of every attempt but the one whose
// result is returned is called before the next attempt.
func (p *Policy) retryLoop(ctx context.Context, call func(ctx context.Context, n int) (ok bool, err error), retry func(ok bool, err error) bool) (context.CancelFunc, error) {
	r := p.Retry
	attempts := 1
	if r != nil {
		attempts = max(r.MaxAttempts, 1)
	}
	for n := 1; ; n++ {
		ok, cancel, err := p.attempt(ctx, func(ctx context.Context) (bool, error) { return call(ctx, n) })
		if r == nil {
			return cancel, err
		}
		if r.Window != nil && !errors.Is(err, ErrOpen) && !errors.Is(err, ErrRateLimited) {
			r.Window.Record(ok && err == nil)
		}
		if (ok && err == nil) || n >= attempts || !retry(ok, err) || ctx.Err() != nil {
			return cancel, err
		}
		if r.Window != nil && !r.Window.TryRetry() {
			if err != nil {
				return cancel, errors.Join(err, ErrRetryBudget)
			}
			return cancel, nil
		}
		cancel()
		sleep := r.Sleep
		if sleep == nil {
			sleep = sleepCtx
		}
		if serr := sleep(ctx, r.Backoff.Delay(n)); serr != nil {
			return noCancel, fmt.Errorf("waiting to retry: %w", serr)
		}
	}
}
