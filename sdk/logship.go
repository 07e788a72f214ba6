package sdk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
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
// its timestamp, so a retried batch is stored once.
type shipper struct {
	url      string
	client   *http.Client
	max      int
	interval time.Duration
	m        *metrics

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

func newShipper(url string, maxBytes int, interval time.Duration, m *metrics) *shipper {
	s := &shipper{
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
	return s
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

// send posts one batch, retrying transient failures with backoff until
// ctx ends; a 4xx other than 429 drops the batch (counted as rejected).
func (s *shipper) send(ctx context.Context, batch []byte, lines int) error {
	wait := 100 * time.Millisecond
	for {
		code, err := s.post(ctx, batch)
		switch {
		case err == nil && code/100 == 2:
			s.m.logsShipped.Add(float64(lines))
			return nil
		case err == nil && code/100 == 4 && code != http.StatusTooManyRequests:
			s.m.logsDropped.WithLabelValues("rejected").Add(float64(lines))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d log lines not accepted by %s: %w", lines, s.url, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
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
	resp.Body.Close()
	return resp.StatusCode, nil
}

// close sends what is queued until ctx ends and stops the shipper.
func (s *shipper) close(ctx context.Context) error {
	s.cancelRun()
	s.stop <- ctx
	return <-s.done
}
