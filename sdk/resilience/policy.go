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

// TimeoutError is an HTTP attempt that got no response within the
// dynamic timeout; it matches context.DeadlineExceeded.
type TimeoutError struct {
	Timeout time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("no response within the dynamic timeout %v: %v", e.Timeout, e.Err)
}

func (e *TimeoutError) Unwrap() []error { return []error{context.DeadlineExceeded, e.Err} }

var errAttemptTimeout = errors.New("dynamic timeout")

// attempt runs one attempt of call under the policy; ok classifies its
// outcome for the breaker, the timeout and the window (a 503 answer is a
// failure even though the call returned no error). The returned cancel
// ends the attempt's context: the caller calls it once it is done with
// the attempt's result. With untilReturn the dynamic timeout bounds the
// call only until it returns — an HTTP response's headers, not the
// reading of its body; otherwise it is the context's deadline (gRPC sends
// it to the server). call gets the timeout, 0 when none.
func (p *Policy) attempt(ctx context.Context, untilReturn bool, call func(ctx context.Context, timeout time.Duration) (ok bool, err error)) (bool, context.CancelFunc, error) {
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
	actx, cancel := ctx, context.CancelFunc(noCancel)
	var timer *time.Timer
	var d time.Duration
	if p.Timeout != nil {
		d = p.Timeout.Timeout()
		if untilReturn {
			c, cc := context.WithCancelCause(ctx)
			actx, cancel = c, func() { cc(nil) }
			timer = time.AfterFunc(d, func() { cc(errAttemptTimeout) })
		} else {
			actx, cancel = context.WithTimeout(ctx, d)
		}
	}
	start := time.Now()
	ok, err := call(actx, d)
	if p.Timeout != nil {
		timedOut := false
		if timer != nil {
			timedOut = !timer.Stop() && err != nil
			if timedOut {
				err = &TimeoutError{Timeout: d, Err: err}
			}
		} else {
			timedOut = err != nil && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		}
		switch {
		case timedOut:
			ok = false
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
func (p *Policy) retryLoop(ctx context.Context, untilReturn bool, call func(ctx context.Context, n int, timeout time.Duration) (ok bool, err error), retry func(ok bool, err error) bool) (context.CancelFunc, error) {
	r := p.Retry
	attempts := 1
	if r != nil {
		attempts = max(r.MaxAttempts, 1)
	}
	for n := 1; ; n++ {
		ok, cancel, err := p.attempt(ctx, untilReturn, func(ctx context.Context, d time.Duration) (bool, error) { return call(ctx, n, d) })
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

// Call runs fn under p, for a call that is neither HTTP nor gRPC (a Kafka
// request, a batch written through a client of its own): each attempt
// takes a token of Limiter, passes Breaker and runs with a context whose
// deadline is Timeout's current value (or the caller's, when nearer); a
// failed attempt is retried, spaced by Retry's Backoff, while Retry's
// MaxAttempts and its adaptive window allow (a denied retry returns the
// last error joined with ErrRetryBudget). Errors rejected by
// Retry.Retryable are not retried. With a nil Retry fn is tried once.
//
// An error fn wraps with Permanent is the peer's considered answer (a
// request it refused): Call returns it as it is, unretried, and it counts
// as a success for the breaker, the timeout and the window — the peer is
// up. So does an error after ctx ended: the caller gave up, the peer did
// not fail. Every other error counts as the peer's failure.
//
// While the breaker is open Call returns ErrOpen at once, without calling
// fn; without a token, ErrRateLimited. Neither is retried here: the
// caller keeps what it was sending and tries again later.
func (p *Policy) Call(ctx context.Context, fn func(ctx context.Context) error) error {
	var answered error // a Permanent error, or one after ctx ended
	cancel, err := p.retryLoop(ctx, false, func(actx context.Context, _ int, _ time.Duration) (bool, error) {
		err := fn(actx)
		var perm permanent
		if err != nil && (errors.As(err, &perm) || ctx.Err() != nil) {
			answered = err
			return true, nil
		}
		return err == nil, err
	}, func(_ bool, err error) bool {
		if errors.Is(err, ErrOpen) || errors.Is(err, ErrRateLimited) {
			return false
		}
		return p.Retry == nil || p.Retry.retryable(err)
	})
	cancel()
	if err == nil {
		return answered
	}
	return err
}
