package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

var _ queue.BatchProducer = (*Spool)(nil)

// prefixSize is the size of the enqueue time (Unix ns, big-endian u64) that
// precedes every batch in the spool.
const prefixSize = 8

// maxPooledBuffer keeps rare huge batches from pinning memory in the pool.
const maxPooledBuffer = 4 << 20

// Log is the durable log a spool keeps its batches in: a *diskqueue.Queue
// opened on a directory of its own, whose layout docs/format/spool.md
// describes. Open takes it over; the spool closes it.
type Log interface {
	queue.BatchProducer
	queue.Consumer
	// TryFetch returns the next record if one is durable now, without
	// waiting; ok is false when there is none yet.
	TryFetch() (m queue.Message, ok bool, err error)
	// Pending calls fn with each durable record Fetch has yet to return,
	// in order, without fetching it.
	Pending(fn func(queue.Message) error) error
	// RecordSize returns the bytes a record of key and a valueLen-byte
	// value takes of the log's bound, its framing included.
	RecordSize(key string, valueLen int) int64
	// MaxBytes returns the log's bound on unconsumed bytes.
	MaxBytes() int64
	Close() error
}

// Spool is a bounded store-and-forward queue.Producer. Publish is safe for
// concurrent use; Run forwards from one goroutine.
type Spool struct {
	opts Options
	log  *slog.Logger
	q    Log
	down queue.Producer
	// maxDown is the largest key and value the downstream accepts; 0 for
	// no known bound.
	maxDown int
	m       *metrics
	bufs    sync.Pool // *[]byte: prefixes and values for PublishBatch

	backlog backlog

	mu        sync.Mutex // guards the fields below
	closed    bool
	running   bool
	cancelRun context.CancelFunc
	runWG     sync.WaitGroup
}

// Open returns a spool keeping its batches in log and forwarding them to
// downstream. It reads what a previous process left in the log once, to
// set the gauges; Run forwards it. It fails with an error wrapping the
// log's corruption error (diskqueue.ErrCorrupt) when spooled batches
// cannot be read back: the directory then needs an operator (see
// docs/format/spool.md). Open closes log when it fails.
func Open(opts Options, log Log, downstream queue.Producer) (s *Spool, err error) {
	if log == nil {
		return nil, errors.New("cannot open spool: the log is nil")
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, log.Close())
		}
	}()
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if downstream == nil {
		return nil, errors.New("cannot open spool: the downstream producer is nil")
	}
	s = &Spool{
		opts:    opts,
		log:     opts.Logger.With("component", "spool"),
		q:       log,
		down:    downstream,
		maxDown: queue.MaxMessageBytes(downstream),
	}
	batches, bytes, oldest, err := s.census()
	if err != nil {
		return nil, err
	}
	if s.m, err = newMetrics(opts.Registerer, &s.backlog.oldest); err != nil {
		return nil, err
	}
	s.backlog.m = s.m
	s.backlog.set(batches, bytes, oldest)
	s.m.maxBytes.Set(float64(log.MaxBytes()))
	if batches > 0 {
		s.log.Info("opened spool with batches left to forward", "batches", batches, "bytes", bytes,
			"oldest", time.Unix(0, oldest).UTC())
	}
	return s, nil
}

// census counts the batches a previous process left in the spool and finds
// the oldest one's enqueue time, without fetching them: Run forwards them
// from the start.
func (s *Spool) census() (batches, bytes, oldest int64, err error) {
	err = s.q.Pending(func(m queue.Message) error {
		enq, _, err := decodeValue(m)
		if err != nil {
			return err
		}
		if batches == 0 {
			oldest = enq
		}
		batches++
		bytes += s.q.RecordSize(m.Key, len(m.Value))
		return nil
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("cannot count the batches in the spool: %w", err)
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
	return int64(binary.BigEndian.Uint64(m.Value)), m.Value[prefixSize:], nil
}

// Publish appends value durably to the spool under key and returns nil
// once it is on disk; Run forwards it. It returns queue.ErrFull, without
// writing, when the spool holds the log's MaxBytes, an error wrapping
// queue.ErrTooLarge for a batch that could never fit, and queue.ErrClosed
// after Close. value is not retained.
func (s *Spool) Publish(ctx context.Context, key string, value []byte) error {
	return s.PublishBatch(ctx, []queue.Record{{Key: key, Value: value}})
}

// PublishBatch appends every record durably, with one write and one
// fsync, and returns nil once they are on disk; Run forwards them in
// order. It fails as Publish does, writing none of them. The records are
// not retained.
func (s *Spool) PublishBatch(ctx context.Context, records []queue.Record) error {
	if len(records) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	n := 0
	for _, r := range records {
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
		start := len(buf)
		buf = binary.BigEndian.AppendUint64(buf, uint64(now))
		buf = append(buf, r.Value...)
		spooled[i] = queue.Record{Key: r.Key, Value: buf[start:]}
		size += s.q.RecordSize(r.Key, prefixSize+len(r.Value))
	}
	err := s.q.PublishBatch(ctx, spooled)
	if cap(buf) <= maxPooledBuffer {
		*bp = buf
		s.bufs.Put(bp)
	}
	if err != nil {
		if errors.Is(err, queue.ErrFull) || errors.Is(err, queue.ErrClosed) {
			return err
		}
		if len(records) == 1 {
			return fmt.Errorf("cannot spool batch of %d bytes for %q: %w", len(records[0].Value), records[0].Key, err)
		}
		return fmt.Errorf("cannot spool %d batches of %d bytes: %w", len(records), n-prefixSize*len(records), err)
	}
	s.backlog.added(int64(len(records)), size, now)
	return nil
}

// MaxMessageBytes returns the largest key and value, together, that the
// spool can take and forward: the smaller of what its log holds and what
// the downstream accepts (queue.MaxMessageBytes).
func (s *Spool) MaxMessageBytes() int {
	n := int(min(s.q.MaxBytes()-s.q.RecordSize("", prefixSize), math.MaxInt32))
	if s.maxDown > 0 {
		n = min(n, s.maxDown)
	}
	return max(0, n)
}

// Close stops Run if it is running, waits for it to return, and closes the
// spool and its log. What was not forwarded stays in the log for the next
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
	if err := s.q.Close(); err != nil {
		return fmt.Errorf("cannot close spool: %w", err)
	}
	return nil
}
