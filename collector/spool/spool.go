package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/sdk/resilience"
)

var _ queue.BatchProducer = (*Spool)(nil)

// prefixSize is the size of the enqueue time (Unix ns, big-endian u64) that
// precedes every batch in the spool.
const prefixSize = 8

// maxPooledBuffer keeps rare huge batches from pinning memory in the pool.
const maxPooledBuffer = 4 << 20

// Log is the durable log of one of a spool's lanes: a *diskqueue.Queue
// opened on a directory of its own (OpenLanes), whose layout
// docs/format/spool.md describes. Open takes it over; the spool closes it.
type Log interface {
	queue.BatchProducer
	queue.Consumer
	// TryFetch returns the next record if one is durable now, without
	// waiting; ok is false when there is none yet.
	TryFetch() (m queue.Message, ok bool, err error)
	// Pending calls fn with each durable record Fetch has yet to return,
	// in order, without fetching it.
	Pending(fn func(queue.Message) error) error
	// RecordSize returns the bytes a record of tenant, key and a
	// valueLen-byte value takes of the log's bound, its framing included.
	RecordSize(tenant, key string, valueLen int) int64
	// MaxBytes returns the log's bound on unconsumed bytes.
	MaxBytes() int64
	Close() error
}

// Spool is a bounded store-and-forward queue.Producer. Publish is safe for
// concurrent use; Run forwards from one goroutine.
type Spool struct {
	opts Options
	log  *slog.Logger
	// lanes are the logs by grade, with the forwarder's state of each.
	lanes [Grades]*lane
	// maxBytes bounds the bytes spooled in all lanes together.
	maxBytes int64
	down     queue.Producer
	// maxDown is the largest key and value the downstream accepts; 0 for
	// no known bound.
	maxDown int
	m       *metrics
	bufs    sync.Pool // *[]byte: prefixes and values for PublishBatch
	// wake is signalled after every Publish, for a forwarder waiting on
	// empty lanes.
	wake chan struct{}

	// breaker and window guard the downstream: the forwarder calls it
	// only while the breaker lets it and retries only as the window
	// grants.
	breaker *resilience.Breaker
	window  *resilience.RetryWindow
	backoff resilience.Backoff

	backlog backlog

	mu        sync.Mutex // guards the fields below
	closed    bool
	running   bool
	cancelRun context.CancelFunc
	runWG     sync.WaitGroup
}

// Open returns a spool keeping its batches in lanes, one log per grade,
// and forwarding them to downstream. Its bound is the smallest MaxBytes
// of the lanes, for all of them together. It reads what a previous
// process left in the lanes once, to set the gauges; Run forwards it. It
// fails with an error wrapping the log's corruption error
// (diskqueue.ErrCorrupt) when spooled batches cannot be read back: the
// directory then needs an operator (see docs/format/spool.md). Open
// closes the lanes when it fails.
func Open(opts Options, lanes Lanes, downstream queue.Producer) (s *Spool, err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, lanes.Close())
		}
	}()
	for g, l := range lanes {
		if l == nil {
			return nil, fmt.Errorf("cannot open spool: the log of the grade-%d lane is nil", g+1)
		}
	}
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if downstream == nil {
		return nil, errors.New("cannot open spool: the downstream producer is nil")
	}
	s = &Spool{
		opts:     opts,
		log:      opts.Logger.With("component", "spool"),
		maxBytes: math.MaxInt64,
		down:     downstream,
		maxDown:  queue.MaxMessageBytes(downstream),
		wake:     make(chan struct{}, 1),
		backoff:  resilience.Backoff{Base: opts.RetryMin, Max: opts.RetryMax, Jitter: 0.5},
	}
	for g, l := range lanes {
		s.lanes[g] = &lane{grade: g, q: l, c: committer{s: s, q: l, last: time.Now()}}
		s.maxBytes = min(s.maxBytes, l.MaxBytes())
	}
	if s.m, err = newMetrics(opts.Registerer, &s.backlog.oldest); err != nil {
		return nil, err
	}
	s.backlog.m = s.m
	if opts.Breaker.Registerer == nil {
		opts.Breaker.Registerer = opts.Registerer
	}
	if opts.RetryWindow.Registerer == nil {
		opts.RetryWindow.Registerer = opts.Registerer
	}
	opts.Breaker.Registerer, opts.RetryWindow.Registerer = takeOver(opts.Breaker.Registerer), takeOver(opts.RetryWindow.Registerer)
	if s.breaker, err = resilience.NewBreaker(opts.Breaker); err != nil {
		return nil, err
	}
	if s.window, err = resilience.NewRetryWindow(opts.RetryWindow); err != nil {
		return nil, err
	}
	for _, l := range s.lanes {
		batches, bytes, oldest, err := l.census()
		if err != nil {
			return nil, err
		}
		s.backlog.set(l.grade, batches, bytes, oldest)
		if batches > 0 {
			s.log.Info("opened spool with batches left to forward", "grade", l.grade+1, "batches", batches, "bytes", bytes,
				"oldest", time.Unix(0, oldest).UTC())
		}
	}
	s.m.maxBytes.Set(float64(s.maxBytes))
	return s, nil
}

// census counts the batches a previous process left in the spool and finds
// the oldest one's enqueue time, without fetching them: Run forwards them
// from the start.
func (l *lane) census() (batches, bytes, oldest int64, err error) {
	err = l.q.Pending(func(m queue.Message) error {
		enq, _, err := decodeValue(m)
		if err != nil {
			return err
		}
		if batches == 0 {
			oldest = enq
		}
		batches++
		bytes += l.q.RecordSize(m.Tenant, m.Key, len(m.Value))
		return nil
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("cannot count the batches in the spool's grade-%d lane: %w", l.grade+1, err)
	}
	return batches, bytes, oldest, nil
}

// errCorrupt is wrapped by the error for a spooled value too short to hold
// its enqueue time.
var errCorrupt = errors.New("corrupt spool record")

// decodeValue splits a spooled value into its enqueue time (Unix ns) and
// the batch.
func decodeValue(m queue.Message) (int64, []byte, error) {
	if len(m.Value) < prefixSize {
		return 0, nil, fmt.Errorf("cannot forward spooled batch at position %d: %w: %d bytes, shorter than the %d-byte enqueue time",
			m.Position, errCorrupt, len(m.Value), prefixSize)
	}
	return int64(binary.BigEndian.Uint64(m.Value)), m.Value[prefixSize:], nil // #nosec G115 -- the enqueue time's Unix-nanosecond bits, as written
}

// Publish appends value durably to the spool under key and the tenant of
// ctx (auth.Tenant), in the lane of the grade ctx carries
// (queue.WithGrade; grade 4 when it carries none), and returns nil once
// it is on disk; Run forwards it under the same key and tenant. It returns
// queue.ErrFull, without writing, when the spool's lanes together hold
// its bound, an error wrapping
// queue.ErrTooLarge for a batch that could never fit, and queue.ErrClosed
// after Close. value is not retained.
func (s *Spool) Publish(ctx context.Context, key string, value []byte) error {
	return s.PublishBatch(ctx, []queue.Record{{Key: key, Value: value}})
}

// PublishBatch appends every record durably to the lane of ctx's grade,
// with one write and one fsync, each under its tenant (queue.TenantOf:
// its own, else ctx's), and returns nil once they are on disk; Run
// forwards them in order. It fails as Publish does, writing none of them,
// and with an error wrapping queue.ErrInvalidTenant for a tenant that is
// not a tenant id. The records are not retained.
func (s *Spool) PublishBatch(ctx context.Context, records []queue.Record) error {
	if len(records) == 0 {
		return nil
	}
	l := s.lanes[laneOf(ctx)]
	now := time.Now().UnixNano()
	n := 0
	tenants := make([]string, len(records))
	for i, r := range records {
		t, err := queue.TenantOf(ctx, r)
		if err != nil {
			return err
		}
		tenants[i] = t
		n += prefixSize + len(r.Value)
	}
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := slices.Grow((*bp)[:0], n)
	spooled := make([]queue.Record, len(records))
	var size int64
	for i, r := range records {
		tenant := tenants[i]
		start := len(buf)
		buf = binary.BigEndian.AppendUint64(buf, uint64(now))
		buf = append(buf, r.Value...)
		spooled[i] = queue.Record{Tenant: tenant, Key: r.Key, Value: buf[start:]}
		size += l.q.RecordSize(tenant, r.Key, prefixSize+len(r.Value))
	}
	var err error
	reserved := false
	switch {
	case size > s.maxBytes:
		err = fmt.Errorf("%d bytes spooled, more than the spool's bound of %d: %w", size, s.maxBytes, queue.ErrTooLarge)
	case !s.backlog.reserve(size, s.maxBytes):
		err = queue.ErrFull
	default:
		reserved = true
		err = l.q.PublishBatch(ctx, spooled)
	}
	if cap(buf) <= maxPooledBuffer {
		*bp = buf
		s.bufs.Put(bp)
	}
	if err != nil {
		if reserved {
			s.backlog.release(size)
		}
		if errors.Is(err, queue.ErrFull) || errors.Is(err, queue.ErrClosed) {
			return err
		}
		if len(records) == 1 {
			return fmt.Errorf("cannot spool batch of %d bytes for %q: %w", len(records[0].Value), records[0].Key, err)
		}
		return fmt.Errorf("cannot spool %d batches of %d bytes: %w", len(records), n-prefixSize*len(records), err)
	}
	s.backlog.added(l.grade, int64(len(records)), size, now)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// longestTenant is as long as the longest tenant id (auth.ValidTenant):
// what a record's tenant can take of the spool's bound.
var longestTenant = strings.Repeat("t", 128)

// MaxMessageBytes returns the largest key and value, together, that the
// spool can take and forward, whatever their tenant: the smaller of what
// its log holds and what the downstream accepts (queue.MaxMessageBytes).
func (s *Spool) MaxMessageBytes() int {
	n := int(min(s.maxBytes-s.lanes[0].q.RecordSize(longestTenant, "", prefixSize), math.MaxInt32))
	if s.maxDown > 0 {
		n = min(n, s.maxDown)
	}
	return max(0, n)
}

// Close stops Run if it is running, waits for it to return, and closes the
// spool and its lanes. What was not forwarded stays in them for the next
// Open.
// Publish calls after Close return queue.ErrClosed.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancel := s.cancelRun
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.runWG.Wait()
	lanes := Lanes{}
	for g, l := range s.lanes {
		lanes[g] = l.q
	}
	if err := lanes.Close(); err != nil {
		return fmt.Errorf("cannot close spool: %w", err)
	}
	return nil
}
