// Package ingester moves batches from the queue into a store, one ingester
// per signal on one shared pipeline: log batches, whose records it parses
// and enriches (New), span batches, whose service dependencies it counts
// (NewSpanIngester), and dump events, which it groups into issues and
// whose new issues and regressions it reports (NewDumpIngester). It
// writes to the store in bulk. A queue position is committed only after
// the store durably accepted every record before it, except the records it
// refused (a storage.RejectedError) and undecodable batches, which are
// dead-lettered first.
package ingester

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/spanmetrics"
	"github.com/vigilhq/vigil/internal/storage"
)

// DeadLetter keeps batches the ingester cannot decode, with the reason.
type DeadLetter interface {
	DeadLetter(ctx context.Context, key string, value []byte, reason string) error
}

// Options configures an Ingester.
type Options struct {
	// MaxBatchRecords bounds the records of one store write.
	MaxBatchRecords int
	// MaxBatchWait is how long to gather messages for one store write.
	MaxBatchWait time.Duration
	// MaxRecordsPerSecond limits consumption to protect the store; 0 = none.
	MaxRecordsPerSecond float64
	// LiftFields copies top-level fields of JSON and logfmt bodies into
	// record attributes.
	LiftFields bool
	// ServiceGrades gives the grade of records that carry none, by service.
	ServiceGrades map[string]int
	// DefaultEnv is the env of records that carry none.
	DefaultEnv string
	// DrainTimeout bounds how long a stopping ingester keeps trying to
	// write and commit the batch in hand.
	DrainTimeout time.Duration
	// SpanMetrics bounds the golden signals the span ingester computes from
	// spans (zero fields take spanmetrics.DefaultOptions').
	SpanMetrics spanmetrics.Options

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns options that suit one machine.
func DefaultOptions() Options {
	return Options{MaxBatchRecords: 32768, MaxBatchWait: 200 * time.Millisecond, DrainTimeout: 30 * time.Second, Logger: slog.Default()}
}

// Ingester moves records from a queue consumer into a store.
type Ingester struct {
	opts     Options
	logger   *slog.Logger
	consumer queue.Consumer
	store    storage.LogWriter
	dlq      DeadLetter
	limiter  *rate.Limiter
	parser   parser
	m        *metrics
}

// New returns an ingester writing to s. dlq may be nil, in which case
// undecodable batches stop the ingester with an error instead of being
// skipped, and records s refuses are retried instead of dead-lettered.
func New(opts Options, c queue.Consumer, s storage.LogWriter, dlq DeadLetter) *Ingester {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	in := &Ingester{
		opts:     opts,
		logger:   opts.Logger,
		consumer: c,
		store:    s,
		dlq:      dlq,
		parser:   parser{liftFields: opts.LiftFields},
		m:        newMetrics(opts.Registerer),
	}
	in.limiter = newLimiter(opts)
	return in
}

// newLimiter returns the consumption rate limiter of opts, or nil.
func newLimiter(opts Options) *rate.Limiter {
	if opts.MaxRecordsPerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(opts.MaxRecordsPerSecond), max(int(opts.MaxRecordsPerSecond), opts.MaxBatchRecords))
}

// waitFor waits until l allows n more records (l may be nil).
func waitFor(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil || n == 0 {
		return nil
	}
	return l.WaitN(ctx, min(n, l.Burst()))
}

// Run consumes until ctx ends. A store outage, however long, is waited out
// with backoff; the batch in hand when ctx ends is still written and
// committed (drain), within DrainTimeout. While the store writes one
// batch, the next is fetched, decoded and enriched.
func (in *Ingester) Run(ctx context.Context) error {
	p := &pipeline[model.LogRecord]{
		opts: in.opts, logger: in.logger, consumer: in.consumer, what: "records",
		decode:     otlplogs.Unmarshal,
		deadLetter: in.deadLetter,
		prepare:    in.prepare,
		write:      in.store.Write,
		reject:     in.reject,
		consumed:   in.m.consumed, written: in.m.written, writeErrors: in.m.writeErrors,
		batches: in.m.batches, commitErrors: in.m.commitErrors, writeSeconds: in.m.writeSeconds,
	}
	return p.run(ctx)
}

// prepare enriches a gathered batch and waits for the rate limiter.
func (in *Ingester) prepare(ctx context.Context, recs []model.LogRecord) error {
	for j := range recs {
		in.enrich(&recs[j])
	}
	return waitFor(ctx, in.limiter, len(recs))
}

func (in *Ingester) deadLetter(ctx context.Context, msg queue.Message, reason string) error {
	in.m.deadLettered.WithLabelValues("undecodable").Inc()
	if in.dlq == nil {
		return fmt.Errorf("queue message at position %d cannot be decoded and no dead-letter destination is configured: %s", msg.Position, reason)
	}
	in.logger.Warn("dead-lettering an undecodable batch", "position", msg.Position, "key", msg.Key, "reason", reason)
	if dm, ok := in.dlq.(messageDeadLetter); ok {
		return dm.DeadLetterMessage(ctx, msg, reason)
	}
	return in.dlq.DeadLetter(ctx, msg.Key, msg.Value, reason)
}

// messageDeadLetter is the optional ability of a dead-letter destination to
// record where a batch came from (Kafka: source partition and offset).
type messageDeadLetter interface {
	DeadLetterMessage(ctx context.Context, m queue.Message, reason string) error
}

// reject dead-letters one record the store refused permanently (a mapping
// conflict, a document too large), as a one-record OTLP batch with the
// store's reason; the store holds the rest of its batch.
func (in *Ingester) reject(ctx context.Context, rec model.LogRecord, reason string) error {
	in.m.deadLettered.WithLabelValues("rejected").Inc()
	if in.dlq == nil {
		return fmt.Errorf("the store rejected record %s (%s) and no dead-letter destination is configured", rec.ID, reason)
	}
	b, err := otlplogs.Marshal([]model.LogRecord{rec})
	if err != nil {
		return err
	}
	in.logger.Warn("dead-lettering a record the store rejected", "id", rec.ID.String(), "service", rec.Service, "reason", reason)
	return in.dlq.DeadLetter(ctx, rec.Service, b, reason)
}

func (in *Ingester) enrich(r *model.LogRecord) {
	if r.Level == "" || r.TraceID == "" {
		in.parser.parse(r)
	}
	if r.Grade == 0 {
		r.Grade = in.opts.ServiceGrades[r.Service]
	}
	if r.Env == "" {
		r.Env = in.opts.DefaultEnv
	}
}

// ParseServiceGrades parses "api=1,checkout=1,batch=4".
func ParseServiceGrades(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, g, ok := strings.Cut(item, "=")
		grade, err := strconv.Atoi(g)
		if !ok || name == "" || err != nil || grade < 1 || grade > 4 {
			return nil, fmt.Errorf("service grade %q: want service=N with N from 1 to 4", item)
		}
		out[name] = grade
	}
	return out, nil
}
