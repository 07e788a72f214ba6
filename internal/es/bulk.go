package es

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/backoff"
)

// BulkMetrics are what a BulkWriter counts; nil fields are not counted.
// The metrics belong to the store, which names and registers them.
type BulkMetrics struct {
	Requests    *prometheus.CounterVec // by "outcome": ok (answered with item results) or error
	Duration    prometheus.Observer    // of one bulk request, response parsing included
	ItemRetries prometheus.Counter     // items resent after a 429 or 5xx item status
}

// BulkWriter sends bulk requests, resending only the items that failed
// transiently. It is safe for concurrent use.
type BulkWriter struct {
	Client *Client
	// MaxAttempts bounds the tries of one request (whole-request failures)
	// and of one item (429 and 5xx item statuses).
	MaxAttempts int
	Backoff     backoff.Backoff
	Metrics     BulkMetrics
}

// Send writes the items idx, numbers the caller gives its documents.
// body(idx) returns the bulk actions and documents of the items idx, in
// that order, newline-terminated; it may be called more than once, and the
// writer does not keep what it returns.
//
// Every item ends in one call done(i, r) with r.Outcome Created, Duplicate,
// Rejected or Failed; done decides what each means to the caller, and an
// error from it ends Send with that error. Items answered 429 or 5xx are
// resent alone, with backoff; so is the whole request when it gets no
// answer, 429, 5xx or a response that cannot be read. A request answered
// 413 is split in halves, and a lone item answered 413 is Rejected. After
// MaxAttempts, or when ctx ends, Send returns an error with the last
// failure; a request answered with another status fails at once.
func (w *BulkWriter) Send(ctx context.Context, idx []int, body func(idx []int) []byte, done func(i int, r ItemResult) error) error {
	pending := idx
	var lastErr error
	for attempt := 1; ; attempt++ {
		results, err := w.bulk(ctx, body(pending), len(pending))
		if errors.Is(err, errTooLarge) {
			if len(pending) == 1 {
				return done(pending[0], ItemResult{Status: http.StatusRequestEntityTooLarge, Outcome: Rejected,
					ErrType: "request_entity_too_large", Reason: "request_entity_too_large: the document exceeds http.max_content_length"})
			}
			half := len(pending) / 2
			if err := w.Send(ctx, pending[:half], body, done); err != nil {
				return err
			}
			return w.Send(ctx, pending[half:], body, done)
		}
		var retry []int
		if err != nil {
			var r retryableError
			if !errors.As(err, &r) {
				return err
			}
			lastErr, retry = err, pending
		} else {
			for k, r := range results {
				if r.Outcome == Retry {
					retry = append(retry, pending[k])
					lastErr = fmt.Errorf("status %d: %s", r.Status, r.Reason)
					continue
				}
				if err := done(pending[k], r); err != nil {
					return err
				}
			}
			if len(retry) == 0 {
				return nil
			}
			if w.Metrics.ItemRetries != nil {
				w.Metrics.ItemRetries.Add(float64(len(retry)))
			}
		}
		if attempt >= w.MaxAttempts {
			return fmt.Errorf("cannot index %d of %d documents into Elasticsearch after %d attempts: %w", len(retry), len(idx), attempt, lastErr)
		}
		if err := backoff.Sleep(ctx, w.Backoff.Delay(attempt)); err != nil {
			return fmt.Errorf("cannot index %d documents into Elasticsearch: %w (last error: %v)", len(retry), err, lastErr)
		}
		pending = retry
	}
}

// errTooLarge is a whole bulk request refused with 413.
var errTooLarge = errors.New("request entity too large")

// retryableError is a whole-request failure worth retrying: no answer, 429,
// 5xx or an unreadable response.
type retryableError struct{ err error }

func (e retryableError) Error() string { return e.err.Error() }
func (e retryableError) Unwrap() error { return e.err }

// bulk sends one bulk request of n items.
func (w *BulkWriter) bulk(ctx context.Context, body []byte, n int) ([]ItemResult, error) {
	m := &w.Metrics
	start := time.Now()
	status, resp, err := w.Client.Do(ctx, http.MethodPost, "/_bulk?filter_path="+bulkFilterPath, body, "application/x-ndjson")
	defer func() {
		if m.Duration != nil {
			m.Duration.Observe(time.Since(start).Seconds())
		}
	}()
	count := func(outcome string) {
		if m.Requests != nil {
			m.Requests.WithLabelValues(outcome).Inc()
		}
	}
	if err != nil {
		count("error")
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, retryableError{fmt.Errorf("bulk request to %v: %w", w.Client.URLs(), err)}
	}
	switch {
	case status == http.StatusOK:
	case status == http.StatusRequestEntityTooLarge:
		count("error")
		return nil, errTooLarge
	case status == http.StatusTooManyRequests || status >= 500:
		count("error")
		return nil, retryableError{fmt.Errorf("bulk request: status %d: %s", status, ErrorReason(resp))}
	default:
		count("error")
		return nil, fmt.Errorf("bulk request to %v: status %d: %s", w.Client.URLs(), status, ErrorReason(resp))
	}
	count("ok")
	res, err := parseBulkResponse(resp, n)
	if err != nil {
		return nil, retryableError{err}
	}
	return res, nil
}
