package sdk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// maxBatchBytes bounds one POST to the logs API (the collector accepts
// 16 MiB by default).
const maxBatchBytes = 1 << 20

// shipper sends log lines to the collector's logs API (POST /api/v1/logs,
// NDJSON) in the background. Its queue is bounded by bytes: a line that
// does not fit is dropped and counted in vigil_sdk_logs_dropped_total, so
// logging never blocks the service. A batch the collector could not
// accept for a transient reason (no connection, 429, 5xx) is retried
// until it is accepted or the shutdown deadline passes; every line carries
// its timestamp, so a retried batch is stored once. Posts pass a circuit
// breaker, and retries are granted by an adaptive retry window and spaced
// by backoff with jitter (sdk/resilience), so that a fleet of services
// does not hammer a collector that is down.
type shipper struct {
	url      string
	client   *http.Client
	max      int
	interval time.Duration
	m        *metrics
	breaker  *resilience.Breaker
	window   *resilience.RetryWindow
	backoff  resilience.Backoff

	mu      sync.Mutex
	pending []byte // NDJSON lines, each ending in '\n'
	lines   int
	sending int // bytes taken by the batch being sent; they count against max
	closing bool

	wake      chan struct{}
	cancelRun context.CancelFunc // ends the retries of run's batch
	stop      chan context.Context
	done      chan error
}

// shipPolicy is how the shipper treats a collector that fails.
type shipPolicy struct {
	breaker resilience.BreakerConfig
	window  resilience.RetryWindowConfig
	backoff resilience.Backoff
}

// defaultShipPolicy: resilience's breaker and a one-second retry window;
// retries 100 ms apart, doubling up to 5 s, with equal jitter.
func defaultShipPolicy() shipPolicy {
	return shipPolicy{
		breaker: resilience.DefaultBreakerConfig(shipperName),
		window:  resilience.DefaultRetryWindowConfig(shipperName),
		backoff: resilience.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5},
	}
}

// shipperName is the name label of the shipper's breaker and window.
const shipperName = "sdk_logs"

func newShipper(url string, maxBytes int, interval time.Duration, m *metrics, p shipPolicy) (*shipper, error) {
	p.breaker.Name, p.window.Name = shipperName, shipperName
	p.breaker.Registerer, p.window.Registerer = m.reg, m.reg
	b, err := resilience.NewBreaker(p.breaker)
	if err != nil {
		return nil, err
	}
	w, err := resilience.NewRetryWindow(p.window)
	if err != nil {
		return nil, err
	}
	s := &shipper{
		breaker:  b,
		window:   w,
		backoff:  p.backoff,
		url:      url,
		client:   &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()},
		max:      maxBytes,
		interval: interval,
		m:        m,
		wake:     make(chan struct{}, 1),
		stop:     make(chan context.Context),
		done:     make(chan error, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancelRun = cancel
	go s.run(ctx)
	return s, nil
}

// Write queues one JSON line; slog's JSON handler calls it once per record.
func (s *shipper) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closing || s.sending+len(s.pending)+len(p) > s.max {
		s.mu.Unlock()
		reason := "queue_full"
		if s.closing {
			reason = "shutdown"
		}
		s.m.logsDropped.WithLabelValues(reason).Inc()
		return len(p), nil
	}
	s.pending = append(s.pending, p...)
	s.lines++
	full := len(s.pending) >= maxBatchBytes/2
	s.mu.Unlock()
	if full {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// take removes up to maxBatchBytes of whole lines from the queue.
func (s *shipper) take() (batch []byte, lines int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil, 0
	}
	n := len(s.pending)
	if n > maxBatchBytes {
		n = bytes.LastIndexByte(s.pending[:maxBatchBytes], '\n') + 1
		if n == 0 { // one line longer than a batch
			n = bytes.IndexByte(s.pending, '\n') + 1
		}
	}
	batch = bytes.Clone(s.pending[:n])
	lines = bytes.Count(batch, []byte{'\n'})
	s.pending = append(s.pending[:0], s.pending[n:]...)
	s.lines -= lines
	s.sending = len(batch)
	return batch, lines
}

func (s *shipper) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.wake:
		case sctx := <-s.stop:
			s.done <- s.drain(sctx)
			return
		}
		_ = s.sendAll(ctx)
	}
}

// sendAll sends the queue in batches until it is empty or ctx ends; a
// batch not accepted then goes back to the head of the queue.
func (s *shipper) sendAll(ctx context.Context) error {
	for {
		batch, lines := s.take()
		if lines == 0 {
			return nil
		}
		err := s.send(ctx, batch, lines)
		s.mu.Lock()
		s.sending = 0
		if err != nil {
			s.pending = append(batch, s.pending...)
			s.lines += lines
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// drain sends everything queued until ctx ends; what is left then is
// dropped and counted.
func (s *shipper) drain(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	err := s.sendAll(ctx)
	if err != nil {
		s.mu.Lock()
		left := s.lines
		s.pending, s.lines = nil, 0
		s.mu.Unlock()
		s.m.logsDropped.WithLabelValues("shutdown").Add(float64(left))
	}
	s.client.CloseIdleConnections()
	return err
}

// send posts one batch until it is accepted or ctx ends; a 4xx other than
// 429 drops the batch (counted as rejected). A post fails fast while the
// breaker is open, and a retry waits for the retry window's grant: until
// then the shipper waits another backoff.
func (s *shipper) send(ctx context.Context, batch []byte, lines int) error {
	for failures := 0; ; {
		if failures == 0 || s.window.TryRetry() {
			code, err := s.attempt(ctx, batch)
			switch {
			case err == nil && code/100 == 2:
				s.m.logsShipped.Add(float64(lines))
				return nil
			case err == nil && code/100 == 4 && code != http.StatusTooManyRequests:
				s.m.logsDropped.WithLabelValues("rejected").Add(float64(lines))
				return nil
			}
		}
		failures++
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d log lines not accepted by %s: %w", lines, s.url, ctx.Err())
		case <-time.After(s.backoff.Delay(failures)):
		}
	}
}

// attempt posts batch once through the breaker and records the outcome
// in the breaker and the retry window: no answer, a 429 or a 5xx is a
// failure; any other answer says the collector is up.
func (s *shipper) attempt(ctx context.Context, batch []byte) (int, error) {
	t, err := s.breaker.Allow()
	if err != nil {
		return 0, err
	}
	code, err := s.post(ctx, batch)
	if ctx.Err() != nil {
		s.breaker.Done(t, false)
		return code, err
	}
	ok := err == nil && code/100 != 5 && code != http.StatusTooManyRequests
	s.breaker.Done(t, ok)
	s.window.Record(ok)
	return code, err
}

func (s *shipper) post(ctx context.Context, batch []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(batch))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close() // drained above; only the status matters
	return resp.StatusCode, nil
}

// close sends what is queued until ctx ends and stops the shipper.
func (s *shipper) close(ctx context.Context) error {
	s.cancelRun()
	s.stop <- ctx
	return <-s.done
}
