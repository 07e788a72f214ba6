package ingester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
)

// SpanStore is where the span ingester writes. Write returns nil only once
// every span is durable; a span already stored (same trace and span id) is
// not stored twice.
type SpanStore interface {
	Write(ctx context.Context, spans []model.Span) error
}

// SpanIngester moves span batches from a queue consumer into a span store,
// committing a queue position only after the store accepted every span
// before it.
type SpanIngester struct {
	opts     Options
	consumer queue.Consumer
	store    SpanStore
	dlq      DeadLetter
	consumed prometheus.Counter
	written  prometheus.Counter
	failures prometheus.Counter
	dead     prometheus.Counter
	rejected prometheus.Counter
	edges    *edges
}

// NewSpanIngester returns a span ingester; opts.MaxBatchRecords bounds the
// spans of one write.
func NewSpanIngester(opts Options, c queue.Consumer, s SpanStore, dlq DeadLetter) *SpanIngester {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	in := &SpanIngester{
		opts: opts, consumer: c, store: s, dlq: dlq,
		consumed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingester", Name: "consumed_spans_total",
			Help: "Spans read from the queue."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingester", Name: "indexed_spans_total",
			Help: "Spans durably accepted by the span store."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingester", Name: "span_store_write_errors_total",
			Help: "Failed span store writes; each is retried with backoff."}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingester", Name: "dead_lettered_span_batches_total",
			Help: "Undecodable span batches sent to the dead-letter destination."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingester", Name: "dead_lettered_spans_total",
			Help: "Spans the store refused permanently, sent to the dead-letter destination with the store's reason."}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(in.consumed, in.written, in.failures, in.dead, in.rejected)
	}
	in.edges = newEdges(opts.Registerer)
	return in
}

// Run consumes until ctx ends, draining the batch in hand.
func (in *SpanIngester) Run(ctx context.Context) error {
	var spans []model.Span
	for {
		spans = spans[:0]
		var last queue.Message
		n := 0
		var deadline time.Time
		var ferr error
		for len(spans) < in.opts.MaxBatchRecords {
			fctx, cancel := ctx, context.CancelFunc(func() {})
			if n > 0 {
				fctx, cancel = context.WithDeadline(ctx, deadline)
			}
			m, err := in.consumer.Fetch(fctx)
			cancel()
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					ferr = fmt.Errorf("cannot fetch spans from queue: %w", err)
				}
				break
			}
			if n == 0 {
				deadline = time.Now().Add(in.opts.MaxBatchWait)
			}
			n++
			last = m
			before := len(spans)
			if spans, err = otlptraces.Unmarshal(spans, m.Value); err != nil {
				spans = spans[:before]
				in.dead.Inc()
				if in.dlq == nil {
					return fmt.Errorf("span batch at position %d cannot be decoded and no dead-letter destination is configured: %w", m.Position, err)
				}
				if err := in.dlq.DeadLetter(ctx, m.Key, m.Value, err.Error()); err != nil {
					return err
				}
				continue
			}
			in.consumed.Add(float64(len(spans) - before))
		}
		if n > 0 {
			if err := in.writeAndCommit(ctx, spans, last); err != nil {
				return err
			}
		}
		if ferr != nil {
			return ferr
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Reject sends a span the store refused permanently to the dead-letter
// destination, as a batch of one with the store's reason. A span store
// calls it from Write, so the spans beside it are stored and the queue
// moves on.
func (in *SpanIngester) Reject(ctx context.Context, span model.Span, reason string) error {
	in.rejected.Inc()
	if in.dlq == nil {
		return fmt.Errorf("the span store rejected span %s/%s (%s) and no dead-letter destination is configured", span.TraceID, span.SpanID, reason)
	}
	b, err := otlptraces.Marshal([]model.Span{span})
	if err != nil {
		return err
	}
	in.opts.Logger.Warn("dead-lettering a span the store rejected", "trace_id", span.TraceID.String(), "span_id", span.SpanID.String(),
		"service", span.Service, "reason", reason)
	return in.dlq.DeadLetter(ctx, span.TraceID.String(), b, reason)
}

func (in *SpanIngester) writeAndCommit(ctx context.Context, spans []model.Span, last queue.Message) error {
	dctx, cancel := drainContext(ctx, in.opts.DrainTimeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for attempt := 1; len(spans) > 0; attempt++ {
		err := in.store.Write(dctx, spans)
		if err == nil {
			in.written.Add(float64(len(spans)))
			in.edges.observe(spans)
			break
		}
		in.failures.Inc()
		in.opts.Logger.Warn("span store write failed; retrying", "spans", len(spans), "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff + rand.N(backoff/2)):
		case <-dctx.Done():
			return fmt.Errorf("cannot write %d spans: %w", len(spans), err)
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	if err := in.consumer.Commit(dctx, last); err != nil {
		if errors.Is(err, queue.ErrClosed) {
			return fmt.Errorf("cannot commit span queue position %d: %w", last.Position, err)
		}
		// Stored already: it is redelivered and deduplicated later.
		in.opts.Logger.Warn("cannot commit span queue position", "position", last.Position, "err", err)
	}
	return nil
}
