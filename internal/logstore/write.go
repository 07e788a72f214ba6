package logstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/model"
)

// writeScratch holds Write's buffers between calls; guarded by writeMu.
type writeScratch struct {
	wal  []byte
	ids  []uint64
	key  []byte
	idx  []int32
	keys []streamKey
	rows []row
}

// Write stores recs. When it returns nil every record is durable: it is in
// the fsync'ed write-ahead log, and visible to queries. Records whose ID was
// written before (within the deduplication window, see idSet) are skipped,
// as are records whose day is already past retention; records with a zero
// ID are never deduplicated. Write may be called concurrently; concurrent
// calls share fsyncs.
func (s *Store) Write(ctx context.Context, recs []model.LogRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	s.writeMu.Lock()
	seg, end, err := s.writeLocked(recs)
	s.writeMu.Unlock()
	if err != nil {
		return err
	}
	if err := seg.syncTo(end); err != nil {
		s.writeMu.Lock()
		if s.failed == nil {
			s.failed = err
		}
		s.writeMu.Unlock()
		return err
	}
	s.m.writeDuration.Observe(time.Since(start).Seconds())
	return nil
}

// writeLocked appends the new records to the WAL and the head and returns
// the WAL position Write must wait to be durable.
func (s *Store) writeLocked(recs []model.LogRecord) (*walSegment, int64, error) {
	if s.closed {
		return nil, 0, ErrClosed
	}
	if s.failed != nil {
		return nil, 0, fmt.Errorf("log store cannot write after an earlier failure, reopen it: %w", s.failed)
	}
	if err := s.maybeRotate(); err != nil {
		return nil, 0, err
	}
	w := &s.wbuf
	w.idx, w.keys = w.idx[:0], w.keys[:0]
	minDay := s.minDay.Load()
	var dups, old int
	size := binary.MaxVarintLen64
	w.ids = w.ids[:0]
	for i := range recs {
		w.ids = append(w.ids, idKey(&recs[i].ID))
	}
	s.dedup.prefetch(w.ids)
	for i := range recs {
		r := &recs[i]
		k := s.streamKeyOf(r)
		if k.day < minDay {
			old++
			continue
		}
		if !r.ID.IsZero() && s.dedup.seen(w.ids[i]) {
			dups++
			continue
		}
		w.idx = append(w.idx, int32(i))
		w.keys = append(w.keys, k)
		size += batchBound(r)
	}
	s.m.duplicates.Add(float64(dups))
	s.m.tooOld.Add(float64(old))
	seg := s.wal.seg
	if len(w.idx) == 0 {
		// Nothing new, but a duplicate's original may still be on its way
		// to disk: wait for everything written so far.
		return seg, seg.size.Load(), nil
	}
	// A new buffer each time: the head's rows point into it.
	w.rows = slices.Grow(w.rows[:0], len(w.idx))[:len(w.idx)]
	buf := encodeBatch(make([]byte, 0, size), recs, w.idx, w.rows)
	w.wal = appendWALRecord(w.wal[:0], seg.seq, buf)
	if err := seg.append(w.wal); err != nil {
		s.failed = err
		return nil, 0, err
	}
	h := s.active
	h.mu.Lock()
	for k, i := range w.idx {
		h.insert(w.keys[k], &recs[i], &w.rows[k])
	}
	h.bytes += int64(len(buf))
	h.mu.Unlock()
	clear(w.rows) // do not keep the buffer alive from here
	s.m.rowsWritten.Add(float64(len(w.idx)))
	return seg, seg.size.Load(), nil
}

// maybeRotate rotates the head once it is full.
func (s *Store) maybeRotate() error {
	if s.active.bytes < s.tune.headBytes {
		return nil
	}
	return s.rotate()
}

// rotate freezes the head for the flusher and starts a new one with a new
// WAL segment; callers hold writeMu. If the previous head is still being
// written out, it waits: that is the store's backpressure.
func (s *Store) rotate() error {
	s.mu.Lock()
	err := s.waitFlushedLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	// Everything written to the old segment becomes durable before anything
	// goes to the new one, so a write that only had duplicates never
	// returns before their originals are safe.
	old := s.wal.seg
	if err := old.syncTo(old.size.Load()); err != nil {
		s.failed = err
		return err
	}
	seg, err := s.wal.create(old.seq + 1)
	if err != nil {
		return err
	}
	s.wal.seg = seg
	s.mu.Lock()
	h := s.active
	s.frozen = append(s.frozen, h)
	s.active = newHead(seg, h)
	s.mu.Unlock()
	select {
	case s.flushReq <- struct{}{}:
	default:
	}
	return nil
}

// waitFlushedLocked waits until no frozen head is left; callers hold mu.
func (s *Store) waitFlushedLocked() error {
	for len(s.frozen) > 0 && s.flushErr == nil && !s.queryDone {
		s.frozenCond.Wait()
	}
	if len(s.frozen) == 0 {
		return nil
	}
	if s.flushErr != nil {
		return fmt.Errorf("cannot write the log store head out to blocks: %w", s.flushErr)
	}
	return ErrClosed
}

// settle writes the head out and has the merger run as if the time were
// now, and waits for both. Tests and benchmarks use it to reach the state a
// store has once its days are over.
func (s *Store) settle(now time.Time) error {
	s.writeMu.Lock()
	err := ErrClosed
	if !s.closed {
		err = s.rotate()
	}
	s.writeMu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	err = s.waitFlushedLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	s.mergeCalls <- mergeCall{now: now, done: done}
	<-done
	return nil
}

// streamKeyOf returns the partition day and stream id of r; callers hold
// writeMu (it uses the scratch key buffer).
func (s *Store) streamKeyOf(r *model.LogRecord) streamKey {
	s.wbuf.key = appendStreamKey(s.wbuf.key[:0], r)
	return streamKey{day: dayOf(r.Timestamp), sid: xxh3.Hash(s.wbuf.key)}
}

// appendStreamKey appends the canonical encoding of r.StreamLabels()
// without building the labels. It must produce exactly
// appendLabelsKey(dst, r.StreamLabels()); a test checks that.
func appendStreamKey(dst []byte, r *model.LogRecord) []byte {
	add := func(name, value string) {
		if value != "" {
			dst = binenc.AppendString(dst, name)
			dst = binenc.AppendString(dst, value)
		}
	}
	add(model.LabelEnv, r.Env)
	if r.Grade > 0 {
		var b [20]byte
		add(model.LabelGrade, unsafeString(strconv.AppendInt(b[:0], int64(r.Grade), 10)))
	}
	add(model.LabelHost, r.Host)
	add(model.LabelLevel, r.Level)
	add(model.LabelService, r.Service)
	add(model.LabelSource, r.Source)
	return dst
}

// appendLabelsKey appends the canonical encoding of a sorted label set,
// whose xxh3 hash is the stream id.
func appendLabelsKey(dst []byte, ls model.Labels) []byte {
	for _, l := range ls {
		dst = binenc.AppendString(dst, l.Name)
		dst = binenc.AppendString(dst, l.Value)
	}
	return dst
}
