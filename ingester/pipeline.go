package ingester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// pipeline moves batches of T (log records, spans) from a queue consumer
// into a store. Gathering and writing overlap: while the store writes one
// batch, the next is fetched and decoded. Fetch and Commit stay on Run's
// goroutine, and a batch's position is committed only after its write, in
// order. Items the store refuses permanently (a *storage.RejectedError
// from write) are dead-lettered with the store's reason before their batch
// is committed. A store outage, however long, is waited out with backoff;
// the batch in hand when ctx ends is still written and committed (drain),
// within DrainTimeout.
type pipeline[T any] struct {
	opts     Options
	logger   *slog.Logger
	consumer queue.Consumer
	what     string // "records", "spans": for log messages

	// decode appends the items of one queue message to dst.
	decode func(dst []T, value []byte) ([]T, error)
	// deadLetter keeps a message that does not decode.
	deadLetter func(ctx context.Context, m queue.Message, reason string) error
	// prepare, when set, runs on a gathered batch before it is written.
	prepare func(ctx context.Context, batch []T) error
	// write stores a batch once; the pipeline retries it. A
	// *storage.RejectedError from it means the rest of the batch is stored.
	write func(ctx context.Context, batch []T) error
	// reject dead-letters an item the store refused permanently, with the
	// store's reason.
	reject func(ctx context.Context, item T, reason string) error
	// stored, when set, runs once a batch is stored and the items the
	// store refused are dead-lettered, with the context of the write (it
	// carries the batch's tenant).
	stored func(ctx context.Context, batch []T)

	// held is a message fetched for a batch of another tenant, the first
	// of the next batch.
	held *queue.Message

	consumed, written, writeErrors prometheus.Counter
	// Optional.
	batches, commitErrors prometheus.Counter
	writeSeconds          prometheus.Observer
}

// run consumes until ctx ends.
func (p *pipeline[T]) run(ctx context.Context) error {
	var bufs [2][]T
	var inflight *write
	// finish waits for the batch being written and commits it.
	finish := func() error {
		if inflight == nil {
			return nil
		}
		w := inflight
		inflight = nil
		defer w.cancel()
		if err := <-w.done; err != nil {
			return err
		}
		if err := p.consumer.Commit(w.ctx, w.last); err != nil {
			if errors.Is(err, queue.ErrClosed) {
				return fmt.Errorf("cannot commit queue position %d: %w", w.last.Position, err)
			}
			// The batch is stored: a commit that fails (Kafka's coordinator
			// away during an outage) only means it is delivered again later,
			// and the store keeps one copy. The next commit covers it.
			if p.commitErrors != nil {
				p.commitErrors.Inc()
			}
			p.logger.Warn("cannot commit queue position; the batch will be redelivered and deduplicated", "position", w.last.Position, "err", err)
			return nil
		}
		if p.batches != nil {
			p.batches.Inc()
		}
		return nil
	}
	for i := 0; ; i++ {
		// While a batch is being written, wait for the next one only
		// briefly, so that the written batch is committed soon even when
		// nothing more arrives.
		batch, last, n, err := p.gather(ctx, bufs[i%2][:0], inflight != nil)
		bufs[i%2] = batch
		// The batch is written under its tenant (one per batch, see
		// gather): the store routes it to the tenant's store.
		tctx := auth.WithTenant(ctx, last.Tenant)
		var perr error
		if n > 0 && p.prepare != nil {
			perr = p.prepare(tctx, batch)
		}
		if ferr := finish(); ferr != nil {
			return ferr
		}
		if n == 0 {
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		if perr != nil && ctx.Err() == nil {
			return perr
		}
		inflight = p.startWrite(tctx, batch, last)
		if err != nil || ctx.Err() != nil {
			if ferr := finish(); ferr != nil {
				return ferr
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// write is a batch being written by its own goroutine.
type write struct {
	ctx    context.Context
	cancel context.CancelFunc
	last   queue.Message
	done   chan error
}

func (p *pipeline[T]) startWrite(ctx context.Context, batch []T, last queue.Message) *write {
	dctx, cancel := drainContext(ctx, p.opts.DrainTimeout)
	w := &write{ctx: dctx, cancel: cancel, last: last, done: make(chan error, 1)}
	go func() { w.done <- p.writeRetrying(dctx, batch) }()
	return w
}

// drainContext returns a context that outlives ctx by grace: the batch in
// hand is retried for as long as the ingester runs (a store outage of any
// length), and for grace more once it is told to stop.
func drainContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var timer *time.Timer
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return dctx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// gather fetches messages until the batch is full, MaxBatchWait passed
// since the first one, a message of another tenant comes (it is held for
// the next batch), or ctx ends. With bounded, it waits for the first
// message at most MaxBatchWait too, and may return none (n == 0, nil error).
func (p *pipeline[T]) gather(ctx context.Context, batch []T, bounded bool) ([]T, queue.Message, int, error) {
	var last queue.Message
	n := 0
	var deadline time.Time
	if bounded {
		deadline = time.Now().Add(p.opts.MaxBatchWait)
	}
	for len(batch) < p.opts.MaxBatchRecords {
		var msg queue.Message
		var err error
		if p.held != nil {
			msg, p.held = *p.held, nil
		} else {
			fctx, cancel := ctx, context.CancelFunc(func() {})
			if n > 0 || bounded {
				fctx, cancel = context.WithDeadline(ctx, deadline)
			}
			msg, err = p.consumer.Fetch(fctx)
			cancel()
		}
		if err == nil && n > 0 && msg.Tenant != last.Tenant {
			// A batch is one tenant's: it is written to the tenant's store.
			// The message starts the next batch.
			p.held = &msg
			return batch, last, n, nil
		}
		if err != nil {
			if (n > 0 || bounded) && errors.Is(err, context.DeadlineExceeded) {
				return batch, last, n, nil
			}
			if ctx.Err() != nil {
				return batch, last, n, nil
			}
			return batch, last, n, fmt.Errorf("cannot fetch from queue: %w", err)
		}
		if n == 0 && !bounded {
			deadline = time.Now().Add(p.opts.MaxBatchWait)
		}
		n++
		prev := last
		last = msg
		before := len(batch)
		batch, err = p.decode(batch, msg.Value)
		if err != nil {
			batch = batch[:before]
			if derr := p.deadLetter(auth.WithTenant(ctx, msg.Tenant), msg, err.Error()); derr != nil {
				// The batch up to the message before this one is written
				// and committed; this one is delivered again.
				return batch, prev, n - 1, derr
			}
			continue
		}
		p.consumed.Add(float64(len(batch) - before))
	}
	return batch, last, n, nil
}

// writeRetrying writes batch until the store accepts it or ctx (a drain
// context) ends. Each write is bounded by the store's own policy (its
// circuit breaker, dynamic timeout and retry window); between writes the
// pipeline waits with backoff and jitter, however long the outage: a
// store that fails fast because its breaker is open keeps the batch here,
// uncommitted, until it takes it.
func (p *pipeline[T]) writeRetrying(ctx context.Context, batch []T) error {
	if len(batch) == 0 {
		return nil
	}
	r := &resilience.Retry{MaxAttempts: math.MaxInt, Backoff: storeBackoff}
	attempt := 0
	_, err := resilience.Do(ctx, r, func(ctx context.Context) (struct{}, error) {
		attempt++
		t0 := time.Now()
		err := p.write(ctx, batch)
		if p.writeSeconds != nil {
			p.writeSeconds.Observe(time.Since(t0).Seconds())
		}
		var rej *storage.RejectedError
		if errors.As(err, &rej) {
			// A dead-letter destination that fails has the whole batch
			// written again: the items stored are skipped as duplicates,
			// the refused ones are refused and dead-lettered again.
			err = p.deadLetterRejected(ctx, batch, rej)
		}
		if err == nil {
			return struct{}{}, nil
		}
		p.writeErrors.Inc()
		if errors.Is(err, resilience.ErrOpen) {
			p.logger.Warn("store failing fast (circuit breaker open); keeping the batch and retrying", p.what, len(batch), "attempt", attempt)
		} else {
			p.logger.Warn("store write failed; retrying", p.what, len(batch), "attempt", attempt, "err", err)
		}
		// Every failure is worth another try: the batch is never dropped.
		if errors.Is(err, context.Canceled) && ctx.Err() == nil {
			err = fmt.Errorf("store write: %v", err)
		}
		return struct{}{}, err
	})
	if err != nil {
		return fmt.Errorf("cannot write %d %s to the store: %w", len(batch), p.what, err)
	}
	p.written.Add(float64(len(batch)))
	if p.stored != nil {
		p.stored(ctx, batch)
	}
	return nil
}

// storeBackoff spaces the pipeline's store writes: 100-150ms, doubling up
// to 10-15s.
var storeBackoff = resilience.Backoff{Base: 150 * time.Millisecond, Max: 15 * time.Second, Jitter: 1.0 / 3}

// deadLetterRejected dead-letters the items of batch the store refused
// permanently; the store holds the rest of the batch.
func (p *pipeline[T]) deadLetterRejected(ctx context.Context, batch []T, rej *storage.RejectedError) error {
	for _, r := range rej.Items {
		if r.Index < 0 || r.Index >= len(batch) {
			return fmt.Errorf("the store refused item %d of a batch of %d %s: %w", r.Index, len(batch), p.what, rej)
		}
		if err := p.reject(ctx, batch[r.Index], r.Reason); err != nil {
			return err
		}
	}
	return nil
}
