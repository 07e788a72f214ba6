package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

var _ queue.Producer = (*Spool)(nil)

// prefixSize is the size of the enqueue time (Unix ns, big-endian u64) that
// precedes every batch in the spool.
const prefixSize = 8

// diskRecordOverhead is what the disk queue adds to a record's key and value
// (8-byte header, 2-byte key length; docs/format/diskqueue.md).
const diskRecordOverhead = 10

// maxPooledBuffer keeps rare huge batches from pinning memory in the pool.
const maxPooledBuffer = 4 << 20

// Spool is a bounded store-and-forward queue.Producer. Publish is safe for
// concurrent use; Run forwards from one goroutine.
type Spool struct {
	opts Options
	log  *slog.Logger
	q    *diskqueue.Queue
	down queue.Producer
	m    *metrics
	bufs sync.Pool // *[]byte: prefix + value for Publish

	backlog backlog

	mu        sync.Mutex // guards the fields below
	closed    bool
	running   bool
	cancelRun context.CancelFunc
	runWG     sync.WaitGroup
}

// Open opens (or creates) the spool in opts.Dir, forwarding to downstream.
// It reads what a previous process left in the spool once, to set the
// gauges; Run forwards it. It fails with an error wrapping
// diskqueue.ErrLocked when another process holds the directory, and with
// one wrapping diskqueue.ErrCorrupt when spooled batches cannot be read
// back (the directory then needs an operator; see docs/format/spool.md).
func Open(opts Options, downstream queue.Producer) (*Spool, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if downstream == nil {
		return nil, errors.New("cannot open spool: the downstream producer is nil")
	}
	s := &Spool{
		opts: opts,
		log:  opts.Logger.With("component", "spool", "dir", opts.Dir),
		down: downstream,
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
	s.m.maxBytes.Set(float64(opts.MaxBytes))
	if s.q, err = diskqueue.Open(s.queueOptions(opts.Registerer)); err != nil {
		return nil, fmt.Errorf("cannot open spool: %w", err)
	}
	if batches > 0 {
		s.log.Info("opened spool with batches left to forward", "batches", batches, "bytes", bytes,
			"oldest", time.Unix(0, oldest).UTC())
	}
	return s, nil
}

// queueOptions returns the options of the spool's disk queue, registering
// its metrics on reg (nil for none).
func (s *Spool) queueOptions(reg prometheus.Registerer) diskqueue.Options {
	return diskqueue.Options{
		Dir:          s.opts.Dir,
		MaxBytes:     s.opts.MaxBytes,
		SegmentBytes: s.opts.SegmentBytes,
		Logger:       s.opts.Logger,
		Registerer:   reg,
	}
}

// census counts the batches a previous process left in the spool and finds
// the oldest one's enqueue time. It reads them through a disk queue opened
// without metrics and closes it again, so that Run reads them from the
// start; the disk queue has no other way to rewind.
func (s *Spool) census() (batches, bytes, oldest int64, err error) {
	q, err := diskqueue.Open(s.queueOptions(nil))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("cannot open spool: %w", err)
	}
	defer func() {
		if cerr := q.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cannot close spool after counting its batches: %w", cerr))
		}
	}()
	// Opening recovered the log and rewrote both position files.
	head, err := readPosition(filepath.Join(s.opts.Dir, headFileName))
	if err != nil {
		return 0, 0, 0, err
	}
	committed, err := readPosition(filepath.Join(s.opts.Dir, offsetFileName))
	if err != nil {
		return 0, 0, 0, err
	}
	// Every record below head is durable, so Fetch does not wait; the
	// deadline only guards against a bug turning that into a hang.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for pos := committed; pos < head; {
		m, err := q.Fetch(ctx)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("cannot read spooled batch at position %d in %s: %w", pos, s.opts.Dir, err)
		}
		if m.Position != pos {
			return 0, 0, 0, fmt.Errorf("cannot count spooled batches in %s: got position %d; want %d (has the disk queue format changed?)", s.opts.Dir, m.Position, pos)
		}
		enq, _, err := decodeValue(m)
		if err != nil {
			return 0, 0, 0, err
		}
		if batches == 0 {
			oldest = enq
		}
		size := recordBytes(m.Key, m.Value)
		batches++
		bytes += size
		pos += size
	}
	return batches, bytes, oldest, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// File names of the disk queue's position files (docs/format/diskqueue.md).
const (
	headFileName   = "producer.head"
	offsetFileName = "consumer.offset"
)

// readPosition reads a disk queue position file: a big-endian u64 and the
// CRC-32C of its 8 bytes. A missing file means position 0.
func readPosition(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot read spool position: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("cannot read spool position from %s: %w: not a valid position file", path, diskqueue.ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(b[:8])), nil
}

// recordBytes is the size of a spooled batch on disk: the disk queue's
// framing, the key and the value with its enqueue-time prefix.
func recordBytes(key string, value []byte) int64 {
	return int64(diskRecordOverhead + len(key) + len(value))
}

// decodeValue splits a spooled value into its enqueue time (Unix ns) and
// the batch.
func decodeValue(m queue.Message) (int64, []byte, error) {
	if len(m.Value) < prefixSize {
		return 0, nil, fmt.Errorf("cannot forward spooled batch at position %d: %w: %d bytes, shorter than the %d-byte enqueue time",
			m.Position, diskqueue.ErrCorrupt, len(m.Value), prefixSize)
	}
	return int64(binary.BigEndian.Uint64(m.Value)), m.Value[prefixSize:], nil
}

// Publish appends value durably to the spool under key and returns nil
// once it is on disk; Run forwards it. It returns queue.ErrFull, without
// writing, when the spool holds Options.MaxBytes, an error wrapping
// queue.ErrTooLarge for a batch that could never fit, and
// queue.ErrClosed after Close. value is not retained.
func (s *Spool) Publish(ctx context.Context, key string, value []byte) error {
	now := time.Now().UnixNano()
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := binary.BigEndian.AppendUint64((*bp)[:0], uint64(now))
	buf = append(buf, value...)
	err := s.q.Publish(ctx, key, buf)
	if cap(buf) <= maxPooledBuffer {
		*bp = buf
		s.bufs.Put(bp)
	}
	if err != nil {
		if errors.Is(err, queue.ErrFull) || errors.Is(err, queue.ErrClosed) {
			return err
		}
		return fmt.Errorf("cannot spool batch of %d bytes for %q: %w", len(value), key, err)
	}
	s.backlog.added(int64(diskRecordOverhead+len(key)+prefixSize+len(value)), now)
	return nil
}

// Close stops Run if it is running, waits for it to return, and closes the
// spool. What was not forwarded stays in Options.Dir for the next Open.
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
		return fmt.Errorf("cannot close spool %s: %w", s.opts.Dir, err)
	}
	return nil
}
