package resilience

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LimiterConfig configures a token-bucket Limiter.
type LimiterConfig struct {
	// Rate is the tokens added per second; Burst the bucket's size
	// (default: Rate rounded up, at least 1). The bucket starts full.
	Rate       float64
	Burst      int
	Name       string
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Limiter is a token bucket.
type Limiter struct {
	rate  float64 // tokens per ns
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   int64 // Unix ns of the last refill

	allowed  prometheus.Counter
	rejected prometheus.Counter
}

// NewLimiter returns a full bucket. Its metrics:
// vigil_resilience_limiter_requests_total{decision="allowed"|"rejected"}.
func NewLimiter(c LimiterConfig) (*Limiter, error) {
	if c.Rate <= 0 {
		return nil, fmt.Errorf("LimiterConfig.Rate %v: want tokens per second above 0", c.Rate)
	}
	if c.Burst <= 0 {
		c.Burst = max(1, int(c.Rate+0.999999))
	}
	in := newInstruments(c.Registerer, c.Name)
	v := in.counter("vigil_resilience_limiter_requests_total", "Requests asked of the token-bucket rate limiter, by decision: allowed or rejected.", "decision")
	l := &Limiter{rate: c.Rate / 1e9, burst: float64(c.Burst), now: nowFunc(c.Now), tokens: float64(c.Burst),
		allowed: v.WithLabelValues("allowed"), rejected: v.WithLabelValues("rejected")}
	if in.err != nil {
		return nil, fmt.Errorf("LimiterConfig.Registerer: cannot register the limiter %q: %w", c.Name, in.err)
	}
	l.last = l.now().UnixNano()
	return l, nil
}

// refill adds the tokens earned since last; l.mu is held.
func (l *Limiter) refill(now int64) {
	if now > l.last {
		l.tokens = min(l.burst, l.tokens+float64(now-l.last)*l.rate)
		l.last = now
	}
}

// Allow takes one token if there is one.
func (l *Limiter) Allow() bool { return l.AllowN(1) }

// AllowN takes n tokens if there are n.
func (l *Limiter) AllowN(n int) bool {
	now := l.now().UnixNano()
	l.mu.Lock()
	l.refill(now)
	ok := l.tokens >= float64(n)
	if ok {
		l.tokens -= float64(n)
	}
	l.mu.Unlock()
	if ok {
		l.allowed.Inc()
	} else {
		l.rejected.Inc()
	}
	return ok
}

// Wait takes one token, waiting for it as long as ctx allows; it fails at
// once when the wait would outlast ctx's deadline.
func (l *Limiter) Wait(ctx context.Context) error {
	now := l.now().UnixNano()
	l.mu.Lock()
	l.refill(now)
	l.tokens--
	wait := time.Duration(0)
	if l.tokens < 0 {
		wait = time.Duration(-l.tokens / l.rate)
	}
	if dl, ok := ctx.Deadline(); ok && wait > 0 && time.Unix(0, now).Add(wait).After(dl) {
		l.tokens++
		l.mu.Unlock()
		l.rejected.Inc()
		return fmt.Errorf("rate limit: a token comes in %v, after the caller's deadline", wait)
	}
	l.mu.Unlock()
	if err := sleepCtx(ctx, wait); err != nil {
		l.mu.Lock()
		l.tokens++
		l.mu.Unlock()
		l.rejected.Inc()
		return err
	}
	l.allowed.Inc()
	return nil
}
