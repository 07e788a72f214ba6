package resilience

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers the HTTP integration reads and writes.
const (
	// GradeHeader carries the calling service's grade (1…4).
	GradeHeader = "X-Vigil-Grade"
	// TimeoutHeader carries the time the caller still waits, as a Go
	// duration ("850ms"): the server's Guard rejects early what it could
	// not answer in time.
	TimeoutHeader = "X-Vigil-Timeout"
	// RequestStartHeader is when a front proxy received the request,
	// "t=<Unix seconds>[.fraction]" (nginx: t=${msec}); the Guard counts
	// the queueing time from it.
	RequestStartHeader = "X-Request-Start"
)

// Transport applies p to every request made through base
// (http.DefaultTransport when nil): limiter, breaker, dynamic timeout,
// and retries through the adaptive window with backoff and jitter. A
// request is retried when it failed without a response, or was answered
// 429, 502, 503 or 504, and only when it can be replayed: its method is
// idempotent (or it has an Idempotency-Key header) and its body is
// empty or has GetBody. A 5xx and 429 count as failures for the breaker
// and the window. The request's deadline goes to the server in
// X-Vigil-Timeout, and grade (1…4; 0 leaves it out) in X-Vigil-Grade.
//
// Compose with the SDK's instrumentation: sdk.HTTPTransport(resilience.Transport(nil, p, 2))
// counts every attempt.
func Transport(base http.RoundTripper, p Policy, grade int) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, p: p, grade: grade}
}

type transport struct {
	base  http.RoundTripper
	p     Policy
	grade int
}

func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	canRetry := replayable(req)
	cancel, err := t.p.retryLoop(req.Context(), true, func(ctx context.Context, n int, timeout time.Duration) (bool, error) {
		if resp != nil { // the previous attempt's answer is discarded
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close() // the discarded answer was drained above
			resp = nil
		}
		r := req.Clone(ctx)
		if n > 1 && req.GetBody != nil {
			b, err := req.GetBody()
			if err != nil {
				return false, Permanent(err)
			}
			r.Body = b
		}
		if dl, ok := ctx.Deadline(); ok && (timeout == 0 || time.Until(dl) < timeout) {
			timeout = time.Until(dl)
		}
		if timeout > 0 {
			r.Header.Set(TimeoutHeader, timeout.Round(time.Millisecond).String())
		}
		if t.grade > 0 {
			r.Header.Set(GradeHeader, gradeLabel(t.grade))
		}
		var err error
		resp, err = t.base.RoundTrip(r)
		if err != nil {
			resp = nil
			return false, err
		}
		return resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests, nil
	}, func(ok bool, err error) bool {
		if !canRetry || errors.Is(err, ErrOpen) || errors.Is(err, ErrRateLimited) {
			return false
		}
		var p permanent
		if errors.As(err, &p) {
			return false
		}
		return err != nil || (resp != nil && retryableStatus(resp.StatusCode))
	})
	if err != nil || resp == nil {
		if resp != nil { // a discarded answer, e.g. the caller gave up during the backoff
			_ = resp.Body.Close() // a discarded answer
		}
		cancel()
		if err == nil {
			err = errors.New("resilience transport: no response")
		}
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose ends an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Middleware puts next behind g: each request waits for a slot in the
// lane of its grade (grade(r), or X-Vigil-Grade when grade is nil; 4
// when absent) and is answered 429 with Retry-After, unserved, when g
// rejects it. Its deadline is the context's, or X-Vigil-Timeout counted
// from its arrival; its arrival is X-Request-Start when a proxy set it.
func Middleware(g *Guard, grade func(*http.Request) int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := requestStart(r.Header.Get(RequestStartHeader))
		if arrived.IsZero() {
			arrived = g.now()
		}
		ctx := r.Context()
		if d, err := time.ParseDuration(r.Header.Get(TimeoutHeader)); err == nil && d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, arrived.Add(d))
			defer cancel()
			r = r.WithContext(ctx)
		}
		gr := 4
		if grade != nil {
			gr = grade(r)
		} else if v, err := strconv.Atoi(r.Header.Get(GradeHeader)); err == nil {
			gr = v
		}
		started, err := g.Acquire(ctx, gr, arrived)
		if err != nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		defer g.Release(started)
		next.ServeHTTP(w, r)
	})
}

// requestStart parses "t=1700000000.123" (seconds) or "t=1700000000123456"
// (microseconds); the zero time when absent or unreadable.
func requestStart(v string) time.Time {
	v = strings.TrimPrefix(strings.TrimSpace(v), "t=")
	if v == "" {
		return time.Time{}
	}
	if !strings.Contains(v, ".") {
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || us <= 0 {
			return time.Time{}
		}
		return time.UnixMicro(us)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f > 9e9 { // after 2255 (Unix ns overflow): not a time
		return time.Time{}
	}
	return time.Unix(0, int64(f*1e9))
}

// IsTimeout reports whether err is a timeout of the attempt (the dynamic
// timeout or a network deadline).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
