package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/vigilhq/vigil/internal/queue"
)

var _ queue.BatchProducer = (*Producer)(nil)

// Producer appends batches to a queue directory. It is safe for concurrent
// use; concurrent Publish calls share fsyncs (see waitSynced).
type Producer struct {
	opts    Options
	log     *slog.Logger
	m       *metrics
	sync    syncFunc
	dirFile *os.File
	lock    *os.File
	head    *os.File
	bufs    sync.Pool // *[]byte record buffers
	notify  *signal   // broadcast when synced advances

	// syncMu is held by the sync leader; see waitSynced.
	syncMu sync.Mutex
	// synced is the position up to which the log is durable. Written only
	// by the holder of syncMu.
	synced atomic.Int64

	mu      sync.Mutex // guards the fields below
	seg     *os.File   // active segment
	segBase int64      // position of the first record in seg
	segSize int64      // bytes of records in seg
	written int64      // position after the last record written
	sealed  []*os.File // synced, replaced segments for the next sync leader to close
	closed  bool
	// v1Tail is set while recover finds a version-1 last segment.
	v1Tail bool
	// err is set when a write or a sync failed in a way that leaves the
	// state of the log unknown; every later Publish returns it.
	err     error
	commits commitSource
}

// commitSource reports the consumer's committed position. refresh asks for
// the latest value rather than one cached for a moment. It is called with
// Producer.mu held.
type commitSource interface {
	committed(refresh bool) (int64, error)
}

// OpenProducer opens dir for publishing only, for a consumer opened with
// OpenConsumer, usually in another process. It fails with an error wrapping
// ErrLocked if another producer holds the directory.
func OpenProducer(opts Options) (*Producer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return openProducer(opts, m)
}

func openProducer(opts Options, m *metrics) (*Producer, error) {
	dirFile, err := prepareDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	lock, err := lockFile(filepath.Join(opts.Dir, producerLockName), "producer")
	if err != nil {
		return nil, errors.Join(err, dirFile.Close())
	}
	p := &Producer{
		opts:    opts,
		log:     opts.Logger.With("role", "producer"),
		m:       m,
		sync:    m.timedSync("producer"),
		dirFile: dirFile,
		lock:    lock,
		notify:  newSignal(),
	}
	if err := p.recover(); err != nil {
		return nil, errors.Join(err, p.closeFiles())
	}
	return p, nil
}

// recover opens the last segment, truncating a torn tail, and makes the
// log durable up to its end.
func (p *Producer) recover() error {
	dir := p.opts.Dir
	committed, err := readCommitted(dir)
	if err != nil {
		return err
	}
	p.commits = &fileCommits{dir: dir, pos: committed}
	bases, err := listSegments(dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		if p.seg, err = createSegment(dir, p.dirFile, committed, p.sync); err != nil {
			return err
		}
		p.segBase = committed
	} else {
		p.segBase = bases[len(bases)-1]
		st, err := recoverTail(filepath.Join(dir, segmentName(p.segBase)), p.sync)
		if err != nil {
			return err
		}
		p.seg, p.segSize = st.f, st.size
		if st.torn > 0 {
			p.log.Warn("truncated torn tail of the last segment", "segment", st.f.Name(),
				"bytes_removed", st.torn, "records_kept", st.records)
		}
		if st.version == version1 && st.size == 0 {
			// Only a header: make it a version-2 segment in place.
			hdr := segmentHeader(version2)
			if _, err := p.seg.WriteAt(hdr[:], 0); err != nil {
				return fmt.Errorf("cannot write header of segment %s: %w", p.seg.Name(), err)
			}
			if err := p.sync(p.seg); err != nil {
				return fmt.Errorf("cannot sync segment %s: %w", p.seg.Name(), err)
			}
			st.version = version2
		}
		p.v1Tail = st.version == version1
	}
	p.written = p.segBase + p.segSize
	if p.v1Tail && p.written >= committed {
		// Records are appended in version 2 only: start a segment of that
		// version after the records of an earlier release.
		p.log.Info("starting a version-2 segment after the version-1 segments of an earlier release", "end", p.written)
		if err := p.rollLocked(); err != nil {
			return err
		}
	}
	if p.written < committed {
		// Segments were removed behind Vigil's back. Resume at the
		// committed position so that the consumer sees new records.
		p.log.Warn("committed offset is past the end of the log; starting a new segment there",
			"end", p.written, "committed", committed)
		p.written = committed
		if err := p.rollLocked(); err != nil {
			return err
		}
	}
	p.synced.Store(p.written)
	p.head, err = os.OpenFile(filepath.Join(dir, headFileName), os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return fmt.Errorf("cannot open head file: %w", err)
	}
	if err := writeHead(p.head, p.written); err != nil {
		return err
	}
	p.m.unconsumedBytes.Set(float64(p.written - committed))
	p.log.Info("opened queue for publishing", "segment", p.seg.Name(), "end", p.written, "committed", committed)
	return nil
}

// Publish appends a record holding key and value, under the tenant of ctx
// (auth.Tenant), and returns nil once it is durable. It returns queue.ErrFull, without writing, when the record
// would take the unconsumed bytes above Options.MaxBytes, and an error
// wrapping queue.ErrTooLarge when the record alone is above it. key must
// be at most 65535 bytes; the tenant must be a valid id (an error wrapping
// queue.ErrInvalidTenant otherwise). ctx is checked before writing; once the record
// is written Publish waits for the sync, which takes milliseconds.
func (p *Producer) Publish(ctx context.Context, key string, value []byte) error {
	return p.PublishBatch(ctx, []queue.Record{{Key: key, Value: value}})
}

// PublishBatch appends one record per element of records, in order, with
// one write and one sync, and returns nil once they are durable. It
// returns queue.ErrFull, without writing, when they do not all fit under
// Options.MaxBytes, and an error wrapping queue.ErrTooLarge when together
// they are above it. A crash before it returns may keep any prefix of the
// records.
func (p *Producer) PublishBatch(ctx context.Context, records []queue.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var size int64
	tenants := make([]string, len(records))
	for i, r := range records {
		if len(r.Key) > maxKeyLen {
			return fmt.Errorf("cannot publish: key of %d bytes is longer than the limit of %d bytes", len(r.Key), maxKeyLen)
		}
		t, err := queue.TenantOf(ctx, r)
		if err != nil {
			return err
		}
		if len(t) > maxTenantLen {
			return fmt.Errorf("cannot publish: tenant id of %d bytes is longer than the limit of %d bytes: %w", len(t), maxTenantLen, queue.ErrInvalidTenant)
		}
		tenants[i] = t
		rs := recordSize(len(t), len(r.Key), len(r.Value))
		if rs-recordHeaderSize > maxPayload {
			return fmt.Errorf("cannot publish a message of %d bytes: a record holds at most %d bytes: %w", rs, maxPayload, queue.ErrTooLarge)
		}
		size += rs
	}
	if size > p.opts.MaxBytes {
		what := "a message"
		if len(records) > 1 {
			what = fmt.Sprintf("%d messages", len(records))
		}
		return fmt.Errorf("cannot publish %s of %d bytes: the queue holds at most %d unconsumed bytes; raise its MaxBytes or publish smaller batches: %w",
			what, size, p.opts.MaxBytes, queue.ErrTooLarge)
	}
	if len(records) == 0 {
		return nil
	}
	bp, _ := p.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := (*bp)[:0]
	for i, r := range records {
		buf = appendRecord(buf, tenants[i], r.Key, r.Value)
	}
	*bp = buf
	end, err := p.append(buf)
	if cap(buf) <= maxPooledBuffer {
		p.bufs.Put(bp)
	}
	if err != nil {
		return err
	}
	if err := p.waitSynced(end); err != nil {
		return err
	}
	p.m.publishedMessages.Add(float64(len(records)))
	p.m.publishedBytes.Add(float64(size))
	return nil
}

// MaxMessageBytes returns the largest key and value, together, that
// Publish can accept whatever the tenant: one record of the longest tenant
// id taking all of Options.MaxBytes.
func (p *Producer) MaxMessageBytes() int {
	return int(max(0, min(p.opts.MaxBytes-recordOverhead-maxTenantLen, maxPayload-tenantLenSize-maxTenantLen-keyLenSize, math.MaxInt32)))
}

// RecordSize returns the bytes a record of tenant, key and a value of
// valueLen bytes takes in the log and of Options.MaxBytes: its framing
// (docs/format/diskqueue.md), tenant, key and value.
func (p *Producer) RecordSize(tenant, key string, valueLen int) int64 {
	return recordSize(len(tenant), len(key), valueLen)
}

// MaxBytes returns Options.MaxBytes, the bound on unconsumed bytes.
func (p *Producer) MaxBytes() int64 { return p.opts.MaxBytes }

// maxPooledBuffer keeps rare huge batches from pinning memory in the pool.
const maxPooledBuffer = 4 << 20

// append writes an encoded record at the end of the log and returns the
// position after it.
func (p *Producer) append(rec []byte) (int64, error) {
	size := int64(len(rec))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, queue.ErrClosed
	}
	if p.err != nil {
		return 0, p.err
	}
	committed, err := p.reserve(size)
	if err != nil {
		return 0, err
	}
	if p.segSize > 0 && p.segSize+size > p.opts.SegmentBytes {
		if err := p.rollLocked(); err != nil {
			return 0, err
		}
	}
	off := segmentHeaderSize + p.segSize
	if _, err := p.seg.WriteAt(rec, off); err != nil {
		// Cut off whatever part of the record reached the file, so the
		// next record starts on a clean tail.
		if terr := p.seg.Truncate(off); terr != nil {
			p.err = fmt.Errorf("cannot remove partly written record from segment %s (reopen the queue to recover): %w", p.seg.Name(), terr)
		}
		return 0, fmt.Errorf("cannot append to segment %s: %w", p.seg.Name(), err)
	}
	p.segSize += size
	p.written += size
	p.m.unconsumedBytes.Set(float64(p.written - committed))
	return p.written, nil
}

// reserve checks that size more bytes fit under the bound, and returns the
// committed position it checked against.
func (p *Producer) reserve(size int64) (int64, error) {
	committed, err := p.commits.committed(false)
	if err != nil {
		return 0, err
	}
	if p.written-committed+size <= p.opts.MaxBytes {
		return committed, nil
	}
	// The cached position may be stale; look again before refusing.
	if committed, err = p.commits.committed(true); err != nil {
		return 0, err
	}
	if p.written-committed+size <= p.opts.MaxBytes {
		return committed, nil
	}
	p.m.unconsumedBytes.Set(float64(p.written - committed))
	p.m.fullRejections.Inc()
	return 0, queue.ErrFull
}

// rollLocked starts a new segment at p.written. The current segment is
// synced first, so that after a crash only the last segment can end in a
// torn record. Called with p.mu held.
func (p *Producer) rollLocked() error {
	if err := p.sync(p.seg); err != nil {
		p.err = fmt.Errorf("cannot sync segment %s (reopen the queue to recover): %w", p.seg.Name(), err)
		return p.err
	}
	f, err := createSegment(p.opts.Dir, p.dirFile, p.written, p.sync)
	if err != nil {
		return err
	}
	p.sealed = append(p.sealed, p.seg)
	p.seg, p.segBase, p.segSize = f, p.written, 0
	p.log.Debug("started segment", "segment", f.Name())
	return nil
}
