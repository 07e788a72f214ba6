package spool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// Commits of forwarded batches are grouped: the spool position is
// committed after commitBatches batches or commitInterval, whichever comes
// first, and at once when the spool is drained, when the downstream refuses
// a batch, and when Run stops. A commit costs two fsyncs; grouping them
// lets forwarding outpace Publish on disks with slow fsyncs. The price is
// that after a crash up to commitBatches acknowledged batches are
// forwarded again.
const (
	commitBatches  = 64
	commitInterval = 100 * time.Millisecond
)

// coalesceBytes bounds a downstream message made of several spooled
// batches (Options.MaxCoalesce).
const coalesceBytes = 2 << 20

// Run forwards spooled batches to the downstream producer, oldest first,
// until ctx ends or Close is called; then it returns nil. A batch's spool
// position is committed (and its space reclaimed) only after the
// downstream acknowledged it. A batch the downstream refuses is retried
// with exponential backoff and jitter from Options.RetryMin to RetryMax,
// for as long as it takes: later batches wait behind it, so order is kept
// and nothing is skipped. Batches being forwarded, or acknowledged but not
// yet committed, when the process dies are forwarded again after a
// restart.
//
// Run returns an error when the spool cannot be read back (corrupt data,
// see docs/format/spool.md) or the downstream producer was closed.
func (s *Spool) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return queue.ErrClosed
	}
	if s.running {
		s.mu.Unlock()
		return errors.New("spool: Run is already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.running, s.cancelRun = true, cancel
	s.runWG.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.cancelRun = false, nil
		s.mu.Unlock()
		cancel()
		s.runWG.Done()
	}()

	var c committer
	c.s, c.last = s, time.Now()
	defer c.flush(ctx)      // on the way out; ctx has ended or Run failed
	var held *queue.Message // fetched for the next round: another key
	var buf []byte
	for {
		var m queue.Message
		var err error
		if held != nil {
			m, held = *held, nil
		} else if m, err = c.fetch(ctx); err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return nil
			}
			return fmt.Errorf("cannot read the spool in %s: %w", s.opts.Dir, err)
		}
		enq, batch, err := decodeValue(m)
		if err != nil {
			return err
		}
		s.backlog.fetched(enq)

		// Coalesce the batches of the same key already waiting behind this
		// one into one downstream message: the fields of an OTLP export
		// request are repeated, so concatenated encodings form one valid
		// request holding all their records. Small batches (an HTTP request
		// each) then share one Kafka round trip.
		group := []queue.Message{m}
		out := batch
		for len(group) < s.opts.MaxCoalesce {
			n, ok, err := s.q.TryFetch()
			if err != nil || !ok {
				break // an error shows again at the next fetch
			}
			_, nb, err := decodeValue(n)
			if err != nil {
				return err
			}
			if n.Key != m.Key || len(out)+len(nb) > coalesceBytes {
				held = &n
				break
			}
			if len(group) == 1 {
				buf = append(buf[:0], batch...)
			}
			buf = append(buf, nb...)
			out = buf
			group = append(group, n)
		}

		if err := s.forward(ctx, m.Key, out, func() { c.flush(ctx) }); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.m.forwardLatency.Observe(max(0, time.Since(time.Unix(0, enq)).Seconds()))
		s.m.forwardedBatches.Add(float64(len(group)))
		s.m.forwardedBytes.Add(float64(len(out)))
		drained := false
		for _, g := range group {
			drained = s.backlog.removed(recordBytes(g.Key, g.Value))
			c.add(g)
		}
		// A Publish counts its batch only once it can be fetched, so an
		// empty backlog means the next Fetch would wait: commit first.
		if drained || c.n >= commitBatches || time.Since(c.last) >= commitInterval {
			if !c.flush(ctx) {
				return nil
			}
		}
	}
}

// committer holds the last forwarded, not yet committed message.
type committer struct {
	s    *Spool
	m    queue.Message
	n    int       // forwarded batches not yet committed
	last time.Time // of the last commit
}

func (c *committer) add(m queue.Message) { c.m, c.n = m, c.n+1 }

// fetch returns the next batch of the spool. While forwarded batches wait
// for their commit, it waits at most until commitInterval after the last
// commit, then commits them before it waits on: the backlog count normally
// triggers that commit first, this bounds it if the count is ever wrong.
func (c *committer) fetch(ctx context.Context) (queue.Message, error) {
	if c.n > 0 {
		fctx, cancel := context.WithTimeout(ctx, commitInterval-time.Since(c.last))
		m, err := c.s.q.Fetch(fctx)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return m, err
		}
		if !c.flush(ctx) {
			return queue.Message{}, queue.ErrClosed // Run stops
		}
	}
	return c.s.q.Fetch(ctx)
}

// flush commits what was forwarded; it reports false when Run must stop.
func (c *committer) flush(ctx context.Context) bool {
	if c.n == 0 {
		return true
	}
	if !c.s.commit(ctx, c.m) {
		return false
	}
	c.n, c.last = 0, time.Now()
	return true
}

// forward publishes one batch downstream, retrying until it is
// acknowledged; onFail runs before the first retry. It returns an error
// only when ctx ends or the downstream is closed.
func (s *Spool) forward(ctx context.Context, key string, batch []byte, onFail func()) error {
	b := s.retryBackoff()
	for attempt := 1; ; attempt++ {
		err := s.down.Publish(ctx, key, batch)
		if err == nil {
			if attempt > 1 {
				batches, bytes := s.backlog.snapshot()
				s.log.Info("forwarded batch after retries", "key", key, "attempts", attempt,
					"spooled_batches", batches, "spooled_bytes", bytes)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		reason := classify(err)
		s.m.forwardErrors.WithLabelValues(reason).Inc()
		if reason == reasonClosed {
			return fmt.Errorf("cannot forward spooled batches: the downstream producer is closed: %w", err)
		}
		if attempt == 1 {
			onFail()
		}
		wait := b.Next()
		if reason == reasonTooLarge {
			s.log.Error("downstream refuses a spooled batch as too large; forwarding is stuck behind it until the limit is raised (Kafka: Options.MaxMessageBytes and the topic's max.message.bytes)",
				"key", key, "bytes", len(batch), "attempt", attempt, "retry_in", wait, "err", err)
		} else {
			s.log.Warn("cannot forward spooled batch; retrying", "key", key, "bytes", len(batch), "reason", reason,
				"attempt", attempt, "retry_in", wait, "err", err)
		}
		if backoff.Sleep(ctx, wait) != nil {
			return ctx.Err()
		}
	}
}

// commit records that m and the batches before it were forwarded,
// retrying on failure. They are already downstream, so a commit cut short
// by shutdown only means they are forwarded again after a restart. It
// reports false when Run must stop.
func (s *Spool) commit(ctx context.Context, m queue.Message) bool {
	b := s.retryBackoff()
	// The commit is two fsyncs away; let it complete even if ctx just
	// ended, to spare duplicates.
	cctx := context.WithoutCancel(ctx)
	for {
		err := s.q.Commit(cctx, m)
		if err == nil {
			return true
		}
		if errors.Is(err, queue.ErrClosed) {
			return false
		}
		s.m.forwardErrors.WithLabelValues(reasonCommit).Inc()
		wait := b.Next()
		s.log.Warn("cannot commit forwarded batch in the spool; retrying", "position", m.Position, "retry_in", wait, "err", err)
		if backoff.Sleep(ctx, wait) != nil {
			return false
		}
	}
}

// retryBackoff paces the retries of one batch or commit: from RetryMin,
// doubling up to RetryMax, each wait drawn from its upper half ("equal
// jitter") so that collectors refused together do not retry together.
func (s *Spool) retryBackoff() backoff.Backoff {
	return backoff.Backoff{Min: s.opts.RetryMin, Max: s.opts.RetryMax, Jitter: 0.5}
}

// classify maps a downstream error to a reason of forward_errors_total.
func classify(err error) string {
	switch {
	case errors.Is(err, kafka.ErrTooLarge), errors.Is(err, diskqueue.ErrTooLarge):
		return reasonTooLarge
	case errors.Is(err, queue.ErrClosed):
		return reasonClosed
	case errors.Is(err, queue.ErrFull):
		return reasonFull
	case errors.Is(err, context.DeadlineExceeded):
		return reasonTimeout
	default:
		return reasonError
	}
}
