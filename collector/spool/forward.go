package spool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/queue"
)

// Commits of forwarded batches are grouped: the spool position is
// committed after commitBatches batches or commitInterval, whichever comes
// first, and at once when the spool is drained, when the downstream refuses
// a batch, and when Run stops. A commit costs two fsyncs; grouping them
// lets forwarding outpace Publish on disks with slow fsyncs. The price is
// that after a crash up to commitBatches acknowledged batches, plus a
// round (see roundBytes), are forwarded again.
const (
	commitBatches  = 64
	commitInterval = 100 * time.Millisecond
)

// A forwarding round takes the batches waiting in the spool, up to
// roundBytes of them (a batch larger than that goes alone) and roundBatches,
// and hands them to the downstream together: with one PublishBatch when it
// has one (Kafka: about one round trip for all of them), else one Publish
// per message, in order.
const (
	roundBytes   = 2 << 20
	roundBatches = 1024
)

// spooled is a batch fetched from the log.
type spooled struct {
	m     queue.Message
	enq   int64  // enqueue time, Unix ns
	batch []byte // m.Value without its prefix
}

// message is one downstream message: the batches group[from:to], of one
// key, their encodings concatenated.
type message struct {
	queue.Record
	from, to int
}

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
	defer c.flush(ctx) // on the way out; ctx has ended or Run failed
	var held *spooled  // fetched for the next round
	for {
		group, err := s.gather(ctx, &c, &held)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return nil
			}
			return err
		}
		msgs := s.coalesce(group)
		// One downstream call per unit: all messages at once, or each on
		// its own for a producer without PublishBatch.
		units := [][]message{msgs}
		if _, ok := s.down.(queue.BatchProducer); !ok {
			units = units[:0]
			for i := range msgs {
				units = append(units, msgs[i:i+1])
			}
		}
		for _, unit := range units {
			if err := s.forward(ctx, unit, func() { c.flush(ctx) }); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			drained := false
			for _, msg := range unit {
				s.m.forwardLatency.Observe(max(0, time.Since(time.Unix(0, group[msg.from].enq)).Seconds()))
				s.m.forwardedBatches.Add(float64(msg.to - msg.from))
				s.m.forwardedBytes.Add(float64(len(msg.Value)))
				for _, g := range group[msg.from:msg.to] {
					drained = s.backlog.removed(s.q.RecordSize(g.m.Key, len(g.m.Value)))
					c.add(g.m)
				}
			}
			// A Publish counts its batch only once it can be fetched, so
			// an empty backlog means the next Fetch would wait: commit
			// first.
			if drained || c.n >= commitBatches || time.Since(c.last) >= commitInterval {
				if !c.flush(ctx) {
					return nil
				}
			}
		}
	}
}

// gather returns the batches of the next round: held, or the next batch
// of the spool (waiting for one), and those already waiting behind it. A
// batch that would take the round over roundBytes is left in held.
func (s *Spool) gather(ctx context.Context, c *committer, held **spooled) ([]spooled, error) {
	var first spooled
	if *held != nil {
		first, *held = **held, nil
	} else {
		m, err := c.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return nil, err
			}
			return nil, fmt.Errorf("cannot read the spool: %w", err)
		}
		if first, err = decode(m); err != nil {
			return nil, err
		}
	}
	s.backlog.fetched(first.enq)
	group := []spooled{first}
	n := len(first.batch)
	for len(group) < roundBatches {
		m, ok, err := s.q.TryFetch()
		if err != nil || !ok {
			break // an error shows again at the next fetch
		}
		next, err := decode(m)
		if err != nil {
			return nil, err
		}
		if n+len(next.batch) > roundBytes {
			*held = &next
			break
		}
		group = append(group, next)
		n += len(next.batch)
	}
	return group, nil
}

func decode(m queue.Message) (spooled, error) {
	enq, batch, err := decodeValue(m)
	return spooled{m: m, enq: enq, batch: batch}, err
}

// coalesce returns the downstream messages of group. Batches of one key
// that follow each other travel as one message, up to Options.MaxCoalesce
// of them and as many bytes as the downstream accepts: the fields of an
// OTLP export request are repeated, so concatenated encodings form one
// valid request holding all their records. Small batches of one key (an
// HTTP request each) then share one Kafka message.
func (s *Spool) coalesce(group []spooled) []message {
	msgs := make([]message, 0, len(group))
	for i := 0; i < len(group); {
		key, n := group[i].m.Key, len(group[i].batch)
		j := i + 1
		for j < len(group) && j-i < s.opts.MaxCoalesce && group[j].m.Key == key &&
			(s.maxDown <= 0 || len(key)+n+len(group[j].batch) <= s.maxDown) {
			n += len(group[j].batch)
			j++
		}
		value := group[i].batch
		if j > i+1 {
			value = make([]byte, 0, n)
			for _, g := range group[i:j] {
				value = append(value, g.batch...)
			}
		}
		msgs = append(msgs, message{Record: queue.Record{Key: key, Value: value}, from: i, to: j})
		i = j
	}
	return msgs
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

// forward publishes msgs downstream in one call, retrying until they are
// acknowledged; onFail runs before the first retry. It returns an error
// only when ctx ends or the downstream is closed.
func (s *Spool) forward(ctx context.Context, msgs []message, onFail func()) error {
	records := make([]queue.Record, len(msgs))
	bytes := 0
	for i, m := range msgs {
		records[i] = m.Record
		bytes += len(m.Value)
	}
	what := []any{"key", msgs[0].Key}
	if len(msgs) > 1 {
		what = []any{"messages", len(msgs)}
	}
	b := s.retryBackoff()
	for attempt := 1; ; attempt++ {
		err := queue.PublishBatch(ctx, s.down, records)
		if err == nil {
			if attempt > 1 {
				batches, spooled := s.backlog.snapshot()
				s.log.Info("forwarded batch after retries", append(what, "attempts", attempt,
					"spooled_batches", batches, "spooled_bytes", spooled)...)
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
				append(what, "bytes", bytes, "attempt", attempt, "retry_in", wait, "err", err)...)
		} else {
			s.log.Warn("cannot forward spooled batch; retrying", append(what, "bytes", bytes, "reason", reason,
				"attempt", attempt, "retry_in", wait, "err", err)...)
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
	case errors.Is(err, queue.ErrTooLarge):
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
