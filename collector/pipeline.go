package collector

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zeebo/xxh3"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/queue"
)

// pipeline turns accepted records into queue messages: one OTLP batch per
// service, keyed by the service name. Large inputs (a file tailer's batch,
// a big HTTP request) are published as they are; small HTTP requests are
// coalesced for up to maxWait so a trickle of one-line requests does not
// become a trickle of one-line queue messages.
type pipeline struct {
	producer   queue.Producer
	ledger     Ledger
	logger     *slog.Logger
	maxRecords int
	minDirect  int
	maxWait    time.Duration

	mu      sync.Mutex
	pending map[pendingKey]*pendingBatch

	published      *prometheus.CounterVec
	publishErrors  *prometheus.CounterVec
	publishSeconds prometheus.Histogram
	publishedBytes prometheus.Counter
}

// pendingKey is what requests are coalesced by.
type pendingKey struct{ tenant, service string }

type pendingBatch struct {
	key   pendingKey
	grade int // the best grade of the requests it holds; 0 when unknown
	recs  []model.LogRecord
	done  chan struct{}
	err   error
}

func newPipeline(p queue.Producer, maxRecords int, maxWait time.Duration, reg prometheus.Registerer) *pipeline {
	pl := &pipeline{
		producer:   p,
		maxRecords: maxRecords,
		minDirect:  256,
		maxWait:    maxWait,
		pending:    map[pendingKey]*pendingBatch{},
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "queued_records_total",
			Help: "Log records durably accepted by the queue.",
		}, []string{"signal"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "queue_errors_total",
			Help: "Batches the queue did not accept, by reason (full, error).",
		}, []string{"reason"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "queue_publish_seconds",
			Help:    "Time to publish one batch durably to the queue.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		publishedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "queued_bytes_total",
			Help: "Bytes of OTLP batches durably accepted by the queue.",
		}),
	}
	if reg != nil {
		reg.MustRegister(pl.published, pl.publishErrors, pl.publishSeconds, pl.publishedBytes)
	}
	pl.publishErrors.WithLabelValues("full")
	pl.publishErrors.WithLabelValues("error")
	return pl
}

// Send returns nil once every record is durable in the queue. On error none
// or only some of the records may be queued; callers retry the whole input
// (the queue's consumers deduplicate by record id).
func (pl *pipeline) Send(ctx context.Context, recs []model.LogRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if len(recs) >= pl.minDirect {
		return pl.publishGrouped(ctx, recs)
	}
	var waits []*pendingBatch
	var full []*pendingBatch
	tenant := auth.Tenant(ctx)
	pl.mu.Lock()
	for _, group := range groupByService(recs) {
		// Requests are coalesced per tenant and service: a queue message
		// is one tenant's.
		key := pendingKey{tenant: tenant, service: group[0].Service}
		b := pl.pending[key]
		if b == nil {
			b = &pendingBatch{key: key, done: make(chan struct{})}
			pl.pending[key] = b
			time.AfterFunc(pl.maxWait, func() { pl.flushPending(b) })
		}
		b.recs = append(b.recs, group...)
		b.grade = better(b.grade, queue.GradeOf(ctx))
		waits = append(waits, b)
		if len(b.recs) >= pl.maxRecords {
			delete(pl.pending, key)
			full = append(full, b)
		}
	}
	pl.mu.Unlock()
	for _, b := range full {
		pl.flush(b)
	}
	for _, b := range waits {
		select {
		case <-b.done:
			if b.err != nil {
				return b.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (pl *pipeline) flushPending(b *pendingBatch) {
	pl.mu.Lock()
	if pl.pending[b.key] != b {
		pl.mu.Unlock()
		return // flushed already because it filled up
	}
	delete(pl.pending, b.key)
	pl.mu.Unlock()
	pl.flush(b)
}

func (pl *pipeline) flush(b *pendingBatch) {
	ctx, cancel := context.WithTimeout(auth.WithTenant(context.Background(), b.key.tenant), 30*time.Second)
	defer cancel()
	if b.grade != 0 {
		ctx = queue.WithGrade(ctx, b.grade)
	}
	b.err = pl.publish(ctx, b.key.service, b.recs)
	close(b.done)
}

func (pl *pipeline) publishGrouped(ctx context.Context, recs []model.LogRecord) error {
	for _, group := range groupByService(recs) {
		if err := pl.publish(ctx, group[0].Service, group); err != nil {
			return err
		}
	}
	return nil
}

// maxBatchBytes bounds one encoded queue message, well under Kafka's
// default message limit (8 MiB in Vigil's topics); a larger batch is split.
const maxBatchBytes = 4 << 20

func (pl *pipeline) publish(ctx context.Context, key string, recs []model.LogRecord) error {
	for start := 0; start < len(recs); start += pl.maxRecords {
		chunk := recs[start:min(start+pl.maxRecords, len(recs))]
		if err := pl.publishChunk(ctx, key, chunk); err != nil {
			return err
		}
	}
	return nil
}

func (pl *pipeline) publishChunk(ctx context.Context, key string, chunk []model.LogRecord) error {
	data, err := otlplogs.Marshal(chunk)
	if err != nil {
		return err
	}
	if len(data) > maxBatchBytes && len(chunk) > 1 {
		half := len(chunk) / 2
		if err := pl.publishChunk(ctx, key, chunk[:half]); err != nil {
			return err
		}
		return pl.publishChunk(ctx, key, chunk[half:])
	}
	if queue.GradeOf(ctx) == 0 {
		// From a tailer: the records' own grade, when they say.
		best := 0
		for i := range chunk {
			best = better(best, chunk[i].Grade)
		}
		if best != 0 {
			ctx = queue.WithGrade(ctx, best)
		}
	}
	t0 := time.Now()
	err = pl.producer.Publish(ctx, key, data)
	pl.publishSeconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		if errors.Is(err, queue.ErrFull) {
			pl.publishErrors.WithLabelValues("full").Inc()
		} else {
			pl.publishErrors.WithLabelValues("error").Inc()
		}
		return fmt.Errorf("cannot queue %d records of service %q: %w", len(chunk), key, err)
	}
	pl.published.WithLabelValues("logs").Add(float64(len(chunk)))
	pl.publishedBytes.Add(float64(len(data)))
	// vigil reconcile compares each tenant's counts with its store.
	if pl.ledger != nil {
		if err := pl.ledger.Record(auth.Tenant(ctx), chunk); err != nil {
			pl.logger.Warn("cannot count queued records for reconciliation", "err", err)
		}
	}
	return nil
}

// groupByService splits recs into runs of one service each, keeping the
// order of records within a service.
func groupByService(recs []model.LogRecord) [][]model.LogRecord {
	first := recs[0].Service
	same := true
	for i := range recs {
		if recs[i].Service != first {
			same = false
			break
		}
	}
	if same {
		return [][]model.LogRecord{recs}
	}
	idx := map[string]int{}
	var groups [][]model.LogRecord
	for _, r := range recs {
		i, ok := idx[r.Service]
		if !ok {
			i = len(groups)
			idx[r.Service] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], r)
	}
	return groups
}

// idSource assigns ids to records that arrive over the network.
//
// A record with its own timestamp gets an id derived from its content and
// its position in the request (service, host, env, timestamp, message,
// index): a client that resends a request it could not confirm (timeout,
// collector killed) produces the same ids, and the store keeps one copy.
// A record without a timestamp gets an id from the process's random boot
// nonce and the request's arrival sequence, so two identical lines are
// never merged; such records cannot be deduplicated across client retries.
type idSource struct {
	nonce [8]byte
	mu    sync.Mutex
	seq   uint64
}

func newIDSource() *idSource {
	s := &idSource{}
	_, _ = rand.Read(s.nonce[:]) // never fails on Linux
	return s
}

func (s *idSource) assign(recs []model.LogRecord) {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	var buf [20]byte
	h := xxh3.New()
	for i := range recs {
		r := &recs[i]
		if !r.ID.IsZero() {
			continue
		}
		h.Reset()
		binary.LittleEndian.PutUint32(buf[:4], uint32(i))
		if r.Timestamp != 0 {
			binary.LittleEndian.PutUint64(buf[4:12], uint64(r.Timestamp)) // #nosec G115 -- the timestamp's bits, hashed
			_, _ = h.Write(buf[:12])
			for _, f := range [...]string{r.Service, r.Host, r.Env} {
				_, _ = h.WriteString(f)
				_, _ = h.Write([]byte{0})
			}
		} else {
			copy(buf[4:12], s.nonce[:])
			binary.LittleEndian.PutUint64(buf[12:20], seq)
			_, _ = h.Write(buf[:20])
		}
		_, _ = h.WriteString(r.Message)
		r.ID = h.Sum128().Bytes()
	}
}
