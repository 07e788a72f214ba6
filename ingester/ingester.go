// Package ingester consumes log batches from the queue, parses and enriches
// their records, and writes them to a store in bulk. A queue position is
// committed only after the store durably accepted every record before it, or
// after an undecodable batch was dead-lettered.
package ingester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/queue"
)

// Store is where the ingester writes. Write returns nil only once every
// record is durable; records whose id is already stored are skipped.
type Store interface {
	Write(ctx context.Context, recs []model.LogRecord) error
}

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
	store    Store
	dlq      DeadLetter
	limiter  *rate.Limiter
	parser   parser
	m        *metrics
}

// New returns an ingester. dlq may be nil, in which case undecodable
// batches stop the ingester with an error instead of being skipped.
func New(opts Options, c queue.Consumer, s Store, dlq DeadLetter) *Ingester {
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
	if opts.MaxRecordsPerSecond > 0 {
		burst := max(int(opts.MaxRecordsPerSecond), opts.MaxBatchRecords)
		in.limiter = rate.NewLimiter(rate.Limit(opts.MaxRecordsPerSecond), burst)
	}
	return in
}

// Run consumes until ctx ends. A store outage, however long, is waited out
// with backoff; the batch in hand when ctx ends is still written and
// committed (drain), within DrainTimeout.
//
// Gathering and writing overlap: while the store writes one batch, the
// next is fetched, decoded and enriched. Fetch and Commit stay on this
// goroutine, and a batch's position is committed only after its write,
// in order.
func (in *Ingester) Run(ctx context.Context) error {
	var bufs [2][]model.LogRecord
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
		if err := in.consumer.Commit(w.ctx, w.last); err != nil {
			if errors.Is(err, queue.ErrClosed) {
				return fmt.Errorf("cannot commit queue position %d: %w", w.last.Position, err)
			}
			// The batch is stored: a commit that fails (Kafka's coordinator
			// away during an outage) only means it is delivered again later,
			// and the store keeps one copy. The next commit covers it.
			in.m.commitErrors.Inc()
			in.logger.Warn("cannot commit queue position; the batch will be redelivered and deduplicated", "position", w.last.Position, "err", err)
			return nil
		}
		in.m.batches.Inc()
		return nil
	}
	for i := 0; ; i++ {
		// While a batch is being written, wait for the next one only
		// briefly, so that the written batch is committed soon even when
		// nothing more arrives.
		recs, last, n, err := in.gather(ctx, bufs[i%2][:0], inflight != nil)
		bufs[i%2] = recs
		for j := range recs {
			in.enrich(&recs[j])
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
		if in.limiter != nil && len(recs) > 0 {
			if lerr := in.limiter.WaitN(ctx, min(len(recs), in.limiter.Burst())); lerr != nil && ctx.Err() == nil {
				return lerr
			}
		}
		inflight = in.startWrite(ctx, recs, last)
		if (err != nil && ctx.Err() == nil) || ctx.Err() != nil {
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

func (in *Ingester) startWrite(ctx context.Context, recs []model.LogRecord, last queue.Message) *write {
	dctx, cancel := drainContext(ctx, in.opts.DrainTimeout)
	w := &write{ctx: dctx, cancel: cancel, last: last, done: make(chan error, 1)}
	go func() { w.done <- in.writeRetrying(dctx, recs) }()
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
// since the first one, or ctx ends. With bounded, it waits for the first
// message at most MaxBatchWait too, and may return none (n == 0, nil error).
func (in *Ingester) gather(ctx context.Context, recs []model.LogRecord, bounded bool) ([]model.LogRecord, queue.Message, int, error) {
	var last queue.Message
	n := 0
	var deadline time.Time
	if bounded {
		deadline = time.Now().Add(in.opts.MaxBatchWait)
	}
	for len(recs) < in.opts.MaxBatchRecords {
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if n > 0 || bounded {
			fctx, cancel = context.WithDeadline(ctx, deadline)
		}
		msg, err := in.consumer.Fetch(fctx)
		cancel()
		if err != nil {
			if (n > 0 || bounded) && errors.Is(err, context.DeadlineExceeded) {
				return recs, last, n, nil
			}
			if ctx.Err() != nil {
				return recs, last, n, nil
			}
			return recs, last, n, fmt.Errorf("cannot fetch from queue: %w", err)
		}
		if n == 0 && !bounded {
			deadline = time.Now().Add(in.opts.MaxBatchWait)
		}
		n++
		last = msg
		before := len(recs)
		recs, err = otlplogs.Unmarshal(recs, msg.Value)
		if err != nil {
			recs = recs[:before]
			if derr := in.deadLetter(ctx, msg, err.Error()); derr != nil {
				return recs, last, n - 1, derr
			}
			continue
		}
		in.m.consumed.Add(float64(len(recs) - before))
	}
	return recs, last, n, nil
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

// Reject dead-letters one record the store refused permanently (a mapping
// conflict, a document too large), as a one-record OTLP batch with the
// store's reason. Stores call it back from Write; the rest of their batch
// is stored as usual.
func (in *Ingester) Reject(ctx context.Context, rec model.LogRecord, reason string) error {
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

// writeRetrying writes recs until the store accepts them or ctx (a drain
// context) ends.
func (in *Ingester) writeRetrying(ctx context.Context, recs []model.LogRecord) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; len(recs) > 0; attempt++ {
		t0 := time.Now()
		err := in.store.Write(ctx, recs)
		in.m.writeSeconds.Observe(time.Since(t0).Seconds())
		if err == nil {
			in.m.written.Add(float64(len(recs)))
			return nil
		}
		in.m.writeErrors.Inc()
		in.logger.Warn("store write failed; retrying", "records", len(recs), "attempt", attempt, "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff + rand.N(backoff/2)):
		case <-ctx.Done():
			return fmt.Errorf("cannot write %d records to the store: %w", len(recs), err)
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	return nil
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
