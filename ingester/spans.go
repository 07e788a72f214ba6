package ingester

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/spanmetrics"
	"github.com/vigilhq/vigil/internal/storage"
)

// SpanIngester moves span batches from a queue consumer into a span store,
// committing a queue position only after the store accepted every span
// before it.
type SpanIngester struct {
	opts     Options
	consumer queue.Consumer
	store    storage.SpanWriter
	dlq      DeadLetter
	consumed prometheus.Counter
	written  prometheus.Counter
	failures prometheus.Counter
	dead     prometheus.Counter
	rejected prometheus.Counter
	edges    *edges
	golden   *spanmetrics.Aggregator
	limiter  *rate.Limiter
}

// DefaultMaxBatchSpans is the default bound of the spans of one write: a
// span takes several times the memory of a log record, and two batches are
// in memory at once (one written, the next gathered).
const DefaultMaxBatchSpans = 8192

// NewSpanIngester returns a span ingester; opts.MaxBatchRecords bounds the
// spans of one write (DefaultMaxBatchSpans suits one machine).
func NewSpanIngester(opts Options, c queue.Consumer, s storage.SpanWriter, dlq DeadLetter) *SpanIngester {
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
	gopts := opts.SpanMetrics
	if gopts.ServiceGrades == nil {
		gopts.ServiceGrades = opts.ServiceGrades
	}
	in.golden = spanmetrics.New(gopts)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(in.golden)
	}
	in.edges = newEdges(in.golden)
	in.limiter = newLimiter(opts)
	return in
}

// Run consumes until ctx ends, draining the batch in hand; while the store
// writes one batch, the next is fetched and decoded (see pipeline).
func (in *SpanIngester) Run(ctx context.Context) error {
	p := &pipeline[model.Span]{
		opts: in.opts, logger: in.opts.Logger, consumer: in.consumer, what: "spans",
		decode: otlptraces.Unmarshal,
		deadLetter: func(ctx context.Context, m queue.Message, reason string) error {
			in.dead.Inc()
			if in.dlq == nil {
				return fmt.Errorf("span batch at position %d cannot be decoded and no dead-letter destination is configured: %s", m.Position, reason)
			}
			return in.dlq.DeadLetter(ctx, m.Key, m.Value, reason)
		},
		write:    in.store.Write,
		reject:   in.reject,
		stored:   in.stored,
		prepare:  func(ctx context.Context, spans []model.Span) error { return waitFor(ctx, in.limiter, len(spans)) },
		consumed: in.consumed, written: in.written, writeErrors: in.failures,
	}
	return p.run(ctx)
}

// stored counts the golden signals of a stored batch: its requests and the
// calls between services, under the batch's tenant.
func (in *SpanIngester) stored(ctx context.Context, spans []model.Span) {
	tenant := auth.Tenant(ctx)
	in.golden.ObserveTenant(tenant, spans)
	in.edges.observe(tenant, spans)
}

// SpanMetrics returns the aggregator of the golden signals of the spans
// stored, registered with Options.Registerer; a spanmetrics.Writer appends
// its series into a metrics storage.
func (in *SpanIngester) SpanMetrics() *spanmetrics.Aggregator { return in.golden }

// reject sends a span the store refused permanently to the dead-letter
// destination, as a batch of one with the store's reason; the store holds
// the spans beside it, and the queue moves on.
func (in *SpanIngester) reject(ctx context.Context, span model.Span, reason string) error {
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
