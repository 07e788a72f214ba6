package spool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/sdk/resilience"
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

// spooled is a batch fetched from a lane's log.
type spooled struct {
	m     queue.Message
	enq   int64  // enqueue time, Unix ns
	batch []byte // m.Value without its prefix
}

// message is one downstream message: the batches group[from:to], of one
// tenant and one key, their encodings concatenated.
type message struct {
	queue.Record
	from, to int
}

// lane is a spool's log of one grade and the forwarder's state of it.
type lane struct {
	grade int // index in Spool.lanes: the grade less one
	q     Log
	c     committer
	// held is the batch fetched last that did not fit in its round: it
	// starts the lane's next round.
	held *spooled
	// refused is the rest of a round the downstream refused: the lane's
	// next round, before anything else of it.
	refused []spooled
}

// Run forwards spooled batches to the downstream producer until ctx ends
// or Close is called; then it returns nil. Each round is taken from the
// best grade's lane that has batches, oldest first, so that a backlog
// drains grade 1 before grades 2 to 4, and batches of one lane keep their
// order. A batch's spool position is committed (and its space reclaimed)
// only after the downstream acknowledged it.
//
// A round the downstream refuses is kept and forwarded again, never
// skipped; in the meantime a round of a better grade may go first. Calls
// to the downstream pass a circuit breaker, retries are granted by an
// adaptive retry window and spaced by exponential backoff with jitter
// from Options.RetryMin to RetryMax (sdk/resilience). Batches being
// forwarded, or acknowledged but not yet committed, when the process dies
// are forwarded again after a restart.
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

	defer s.flushAll(ctx) // on the way out; ctx has ended or Run failed
	failures := 0         // downstream attempts failed in a row
	for {
		l, group, err := s.next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return nil
			}
			return err
		}
		if failures > 0 && !s.window.TryRetry() {
			// The window's budget for this period is spent: wait, and
			// ask again with the best lane's round.
			l.refused = group
			if s.pause(ctx, failures) != nil {
				return nil
			}
			continue
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
			if err := s.forward(ctx, unit, failures+1); err != nil {
				// Fetched, not acknowledged: the lane's next round, in
				// this Run or the next one.
				l.refused = group[unit[0].from:]
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, queue.ErrClosed) {
					return err
				}
				failures++
				// Acknowledged batches are not held through an outage.
				if !s.flushAll(ctx) || s.pause(ctx, failures) != nil {
					return nil
				}
				break
			}
			if failures > 0 {
				batches, spooled := s.backlog.snapshot()
				s.log.Info("forwarded batches after retries", "grade", l.grade+1, "messages", len(unit),
					"attempts", failures+1, "spooled_batches", batches, "spooled_bytes", spooled)
				failures = 0
			}
			drained := false
			for _, msg := range unit {
				s.m.forwardLatency.Observe(max(0, time.Since(time.Unix(0, group[msg.from].enq)).Seconds()))
				s.m.forwardedBatches.Add(float64(msg.to - msg.from))
				s.m.forwardedBytes.Add(float64(len(msg.Value)))
				for _, g := range group[msg.from:msg.to] {
					drained = s.backlog.removed(l.grade, l.q.RecordSize(g.m.Tenant, g.m.Key, len(g.m.Value)))
					l.c.add(g.m)
				}
			}
			// A Publish counts its batch only once it can be fetched, so
			// a drained lane has nothing to fetch: commit it now. Lanes
			// left for a better one are committed by the interval.
			for _, o := range s.lanes {
				if (o == l && (drained || o.c.n >= commitBatches)) || time.Since(o.c.last) >= commitInterval {
					if !o.c.flush(ctx) {
						return nil
					}
				}
			}
		}
	}
}

// pause waits before the retry after failures failed attempts in a row.
func (s *Spool) pause(ctx context.Context, failures int) error {
	return backoff.Sleep(ctx, s.backoff.Delay(failures))
}

// next returns the lane and the batches of the next round: of the best
// grade's lane that has any, its refused round, else the batches waiting
// in it. When no lane has any, it commits what was forwarded and waits
// for a Publish.
func (s *Spool) next(ctx context.Context) (*lane, []spooled, error) {
	for {
		for _, l := range s.lanes {
			if l.refused != nil {
				group := l.refused
				l.refused = nil
				return l, group, nil
			}
			group, err := s.gather(l)
			if err != nil {
				return nil, nil, err
			}
			if group != nil {
				s.backlog.fetched(l.grade, group[0].enq)
				return l, group, nil
			}
		}
		if !s.flushAll(ctx) {
			return nil, nil, queue.ErrClosed // Run stops
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// flushAll commits what was forwarded from every lane; it reports false
// when Run must stop.
func (s *Spool) flushAll(ctx context.Context) bool {
	for _, l := range s.lanes {
		if !l.c.flush(ctx) {
			return false
		}
	}
	return true
}

// gather returns the batches of l's next round: held, or the next batch
// of the lane, and those already waiting behind it; nil when the lane
// has none now. A batch that would take the round over roundBytes is
// left in held.
func (s *Spool) gather(l *lane) ([]spooled, error) {
	var first spooled
	if l.held != nil {
		first, l.held = *l.held, nil
	} else {
		m, ok, err := l.q.TryFetch()
		if err != nil {
			if errors.Is(err, queue.ErrClosed) {
				return nil, err
			}
			return nil, fmt.Errorf("cannot read the spool's grade-%d lane: %w", l.grade+1, err)
		}
		if !ok {
			return nil, nil
		}
		if first, err = decode(m); err != nil {
			return nil, err
		}
	}
	group := []spooled{first}
	n := len(first.batch)
	for len(group) < roundBatches {
		m, ok, err := l.q.TryFetch()
		if err != nil || !ok {
			break // an error shows again at the next fetch
		}
		next, err := decode(m)
		if err != nil {
			return nil, err
		}
		if n+len(next.batch) > roundBytes {
			l.held = &next
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

// coalesce returns the downstream messages of group. Batches of one
// tenant and one key that follow each other travel as one message, under
// that tenant, up to Options.MaxCoalesce of them and as many bytes as the
// downstream accepts: the fields of an OTLP export request are repeated,
// so concatenated encodings form one valid request holding all their
// records. Small batches of one key (an HTTP request each) then share one
// Kafka message; batches of two tenants never do, whatever their key.
func (s *Spool) coalesce(group []spooled) []message {
	msgs := make([]message, 0, len(group))
	for i := 0; i < len(group); {
		tenant, key, n := group[i].m.Tenant, group[i].m.Key, len(group[i].batch)
		j := i + 1
		for j < len(group) && j-i < s.opts.MaxCoalesce && group[j].m.Key == key && group[j].m.Tenant == tenant &&
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
		msgs = append(msgs, message{Record: queue.Record{Tenant: tenant, Key: key, Value: value}, from: i, to: j})
		i = j
	}
	return msgs
}

// committer holds the last forwarded, not yet committed message of a
// lane.
type committer struct {
	s    *Spool
	q    Log
	m    queue.Message
	n    int       // forwarded batches not yet committed
	last time.Time // of the last commit
}

func (c *committer) add(m queue.Message) { c.m, c.n = m, c.n+1 }

// flush commits what was forwarded; it reports false when Run must stop.
func (c *committer) flush(ctx context.Context) bool {
	if c.n == 0 {
		return true
	}
	if !c.s.commit(ctx, c.q, c.m) {
		return false
	}
	c.n, c.last = 0, time.Now()
	return true
}

// forward makes attempt n (1 for the first of a round, counting the
// failures before it in a row) to publish msgs downstream in one call,
// through the breaker, and records its outcome in the breaker and the
// retry window. It returns ctx's error when ctx ended, and an error
// wrapping queue.ErrClosed when the downstream is closed.
func (s *Spool) forward(ctx context.Context, msgs []message, attempt int) error {
	records := make([]queue.Record, len(msgs))
	bytes := 0
	for i, m := range msgs {
		records[i] = m.Record
		bytes += len(m.Value)
	}
	ticket, err := s.breaker.Allow()
	if err != nil {
		// Open: the peer failed recently; vigil_resilience_breaker_* count it.
		return err
	}
	err = queue.PublishBatch(ctx, s.down, records)
	if ctx.Err() != nil {
		// Stopping: the call was cut short. Counted as a failure, so that
		// a half-open breaker does not keep the probe as in flight.
		s.breaker.Done(ticket, false)
		return ctx.Err()
	}
	reason := ""
	if err != nil {
		reason = classify(err)
	}
	// A batch refused as too large says nothing of the downstream's
	// health: it must not open the breaker in front of the other lanes.
	ok := err == nil || reason == reasonTooLarge
	s.breaker.Done(ticket, ok)
	s.window.Record(err == nil)
	if err == nil {
		return nil
	}
	s.m.forwardErrors.WithLabelValues(reason).Inc()
	if reason == reasonClosed {
		return fmt.Errorf("cannot forward spooled batches: the downstream producer is closed: %w", err)
	}
	what := []any{"key", msgs[0].Key}
	if len(msgs) > 1 {
		what = []any{"messages", len(msgs)}
	}
	if reason == reasonTooLarge {
		s.log.Error("downstream refuses a spooled batch as too large; its lane is stuck behind it until the limit is raised (Kafka: Options.MaxMessageBytes and the topic's max.message.bytes)",
			append(what, "bytes", bytes, "attempt", attempt, "err", err)...)
	} else {
		s.log.Warn("cannot forward spooled batches; retrying", append(what, "bytes", bytes, "reason", reason,
			"attempt", attempt, "err", err)...)
	}
	return err
}

// commit records that m and the batches of q before it were forwarded,
// retrying with backoff on failure. They are already downstream, so a
// commit cut short by shutdown only means they are forwarded again after
// a restart. It reports false when Run must stop.
func (s *Spool) commit(ctx context.Context, q Log, m queue.Message) bool {
	// The commit is two fsyncs away; let it complete even if ctx just
	// ended, to spare duplicates.
	cctx := context.WithoutCancel(ctx)
	retry := &resilience.Retry{
		MaxAttempts: math.MaxInt,
		Backoff:     s.backoff,
		Retryable:   func(err error) bool { return !errors.Is(err, queue.ErrClosed) },
	}
	_, err := resilience.Do(ctx, retry, func(context.Context) (struct{}, error) {
		err := q.Commit(cctx, m)
		if err != nil && !errors.Is(err, queue.ErrClosed) {
			s.m.forwardErrors.WithLabelValues(reasonCommit).Inc()
			s.log.Warn("cannot commit forwarded batches in the spool; retrying", "position", m.Position, "err", err)
		}
		return struct{}{}, err
	})
	return err == nil
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
