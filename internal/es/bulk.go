package es

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
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
	// Policy is applied to every bulk request: its breaker fails requests
	// fast while the cluster keeps failing, its dynamic timeout bounds
	// each request, and its Retry bounds the tries of one request
	// (whole-request failures) and of one item (429 and 5xx item
	// statuses), spaced by its backoff and granted by its adaptive retry
	// window. NewBulkPolicy builds one; the zero Policy tries once.
	Policy  resilience.Policy
	Metrics BulkMetrics
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
// answer in time, 429, 5xx or a response that cannot be read. A request
// answered 413 is split in halves, and a lone item answered 413 is
// Rejected. When the Policy's attempts or its retry window are used up,
// or when ctx ends, Send returns an error with the last failure; a request
// answered with another status fails at once. While the Policy's breaker
// is open Send returns at once an error wrapping resilience.ErrOpen, with
// no item done: the caller keeps them and writes them again later.
func (w *BulkWriter) Send(ctx context.Context, idx []int, body func(idx []int) []byte, done func(i int, r ItemResult) error) error {
	pending := idx
	attempts := 0
	var lastErr, doneErr, refused error
	err := w.Policy.Call(ctx, func(actx context.Context) error {
		attempts++
		results, err := w.bulk(actx, body(pending), len(pending))
		if err != nil {
			lastErr = err
			var r retryableError
			if !errors.As(err, &r) {
				refused = err // 413 too: the cluster answered
				return resilience.Permanent(err)
			}
			return err
		}
		var retry []int
		for k, r := range results {
			if r.Outcome == Retry {
				retry = append(retry, pending[k])
				lastErr = fmt.Errorf("status %d: %s", r.Status, r.Reason)
				continue
			}
			if err := done(pending[k], r); err != nil {
				doneErr = err
				return resilience.Permanent(err)
			}
		}
		if len(retry) == 0 {
			return nil
		}
		if w.Metrics.ItemRetries != nil {
			w.Metrics.ItemRetries.Add(float64(len(retry)))
		}
		pending = retry
		return fmt.Errorf("%d of %d items answered %w", len(retry), len(results), lastErr)
	})
	switch {
	case err == nil:
		return nil
	case doneErr != nil:
		return doneErr
	case errors.Is(refused, errTooLarge):
		if len(pending) == 1 {
			return done(pending[0], ItemResult{Status: http.StatusRequestEntityTooLarge, Outcome: Rejected,
				ErrType: "request_entity_too_large", Reason: "request_entity_too_large: the document exceeds http.max_content_length"})
		}
		half := len(pending) / 2
		if err := w.Send(ctx, pending[:half], body, done); err != nil {
			return err
		}
		return w.Send(ctx, pending[half:], body, done)
	case errors.Is(err, resilience.ErrOpen):
		return fmt.Errorf("cannot index %d documents into Elasticsearch %v: %w", len(pending), w.Client.URLs(), err)
	case ctx.Err() != nil:
		return fmt.Errorf("cannot index %d documents into Elasticsearch: %w (last error: %v)", len(pending), ctx.Err(), lastErr)
	case refused != nil:
		return refused
	}
	return fmt.Errorf("cannot index %d of %d documents into Elasticsearch after %d attempts: %w", len(pending), len(idx), attempts, err)
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
