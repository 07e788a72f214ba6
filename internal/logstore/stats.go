package logstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

var _ storage.StreamStatsReader = (*Store)(nil)

// StreamStats sums the rows and message bytes of the matching streams per
// bucket (see storage.StreamStatsReader). A block that lies within one
// bucket is counted from its index entry alone; of a block that a bucket
// edge or the range cuts through, only its timestamps and message lengths
// are read. Blocks written before index entries carried statistics are
// read whole (timestamps and message frames). Head rows are counted in
// memory. Blocks are read by up to GOMAXPROCS goroutines.
func (s *Store) StreamStats(ctx context.Context, ms []*model.LabelMatcher, start, end, step int64) ([]storage.StreamStat, error) {
	if end <= start {
		return nil, nil
	}
	q, err := s.newQuery(ctx, storage.SelectParams{Start: start, End: end, Matchers: ms})
	if err != nil {
		return nil, err
	}
	defer q.release()
	workers := max(1, min(runtime.GOMAXPROCS(0), len(q.srcs)/64))
	counters := make([]*statsCounter, workers)
	errs := make([]error, workers)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := range counters {
		sc := &statsCounter{start: start, end: end, step: step, buckets: storage.StatBuckets(start, end, step), streams: map[streamKey]*storage.StreamStat{}}
		counters[w] = sc
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(q.srcs) {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = sc.add(q, q.srcs[i])
				}
				if err != nil {
					errs[w] = err
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// A stream has one id per day partition, and its blocks were counted
	// by several workers: join them by labels.
	byLabels := map[string]*storage.StreamStat{}
	var key []byte
	for _, sc := range counters {
		for _, st := range sc.streams {
			key = appendLabelsKey(key[:0], st.Labels)
			if prev := byLabels[string(key)]; prev != nil {
				for b := range prev.Rows {
					prev.Rows[b] += st.Rows[b]
					prev.Bytes[b] += st.Bytes[b]
				}
				continue
			}
			byLabels[string(key)] = st
		}
	}
	out := make([]storage.StreamStat, 0, len(byLabels))
	for _, st := range byLabels {
		out = append(out, *st)
	}
	return out, nil
}

// statsCounter accumulates one StreamStats call.
type statsCounter struct {
	start, end, step int64
	buckets          int
	streams          map[streamKey]*storage.StreamStat
}

func (sc *statsCounter) bucket(ts int64) int {
	if sc.step <= 0 {
		return 0
	}
	return min(int((ts-sc.start)/sc.step), sc.buckets-1)
}

func (sc *statsCounter) stream(src *source) *storage.StreamStat {
	st := sc.streams[src.key]
	if st == nil {
		st = &storage.StreamStat{Labels: src.labels, Rows: make([]int64, sc.buckets), Bytes: make([]int64, sc.buckets)}
		sc.streams[src.key] = st
	}
	return st
}

// add counts the rows of src in range.
func (sc *statsCounter) add(q *query, src *source) error {
	if src.mem != nil {
		var st *storage.StreamStat
		for i := range src.mem.rows {
			r := &src.mem.rows[i]
			if r.ts < sc.start || r.ts >= sc.end {
				continue
			}
			if st == nil {
				st = sc.stream(src)
			}
			b := sc.bucket(r.ts)
			st.Rows[b]++
			st.Bytes[b] += int64(len(r.msg))
		}
		return nil
	}
	m := src.meta
	if m.flags&flagStats != 0 && m.minTs >= sc.start && m.maxTs < sc.end && sc.bucket(m.minTs) == sc.bucket(m.maxTs) {
		st := sc.stream(src)
		b := sc.bucket(m.minTs)
		st.Rows[b] += int64(m.rows)
		st.Bytes[b] += m.bytes
		return nil
	}
	q.scanned.Add(1)
	p := src.part
	if m.flags&flagStats != 0 {
		return sc.addLengths(q, src)
	}
	raw, err := p.readBlock(m, false, getBuffer(int(m.colsLen)))
	if err != nil {
		return q.blockError(p, m, err)
	}
	cols, err := parseBlockCols(raw)
	if err != nil {
		putBuffer(raw)
		return q.blockError(p, m, err)
	}
	// Only lengths are kept: every buffer goes back to the pool.
	cols.pooled, cols.pooledRaw = true, raw
	defer cols.release()
	lo := sort.Search(cols.rows, func(i int) bool { return cols.ts[i] >= sc.start })
	hi := sort.Search(cols.rows, func(i int) bool { return cols.ts[i] >= sc.end })
	if lo >= hi {
		return nil
	}
	if err := cols.loadColumn(fcolMsg, lo, hi); err != nil {
		return q.blockError(p, m, err)
	}
	st := sc.stream(src)
	msgs := cols.strs[fcolMsg]
	for i := lo; i < hi; i++ {
		b := sc.bucket(cols.ts[i])
		st.Rows[b]++
		st.Bytes[b] += int64(len(msgs[i]))
	}
	return nil
}

// addLengths counts a block with statistics from its timestamps and
// message lengths, the prefix of its columns section that holds them.
func (sc *statsCounter) addLengths(q *query, src *source) error {
	p, m := src.part, src.meta
	raw := getBuffer(int(m.statsLen))
	if _, err := p.data.ReadAt(raw, m.off+int64(m.bloomLen)); err != nil {
		putBuffer(raw)
		return fmt.Errorf("cannot read block at %d of %s: %w", m.off, p.data.Name(), err)
	}
	cols, err := parseColsHeader(raw, int(m.colsLen))
	if err == nil && crc(raw) != m.statsCRC {
		err = fmt.Errorf("block at %d of %s: checksum mismatch: %w", m.off, p.data.Name(), errCorrupt)
	}
	if err != nil {
		putBuffer(raw)
		return q.blockError(p, m, err)
	}
	cols.raw, cols.pooled, cols.pooledRaw = raw, true, raw
	defer cols.release()
	if r := cols.simple[colLen]; cols.version < 2 || r.off+r.compLen > len(raw) {
		return q.blockError(p, m, errCorrupt)
	}
	tsData, err := cols.chunk(cols.simple[colTS])
	if err != nil {
		return q.blockError(p, m, err)
	}
	it, err := newTSIter(tsData)
	if err != nil {
		return q.blockError(p, m, err)
	}
	lens, err := cols.chunk(cols.simple[colLen])
	if err != nil {
		return q.blockError(p, m, err)
	}
	var st *storage.StreamStat
	for range cols.rows {
		ts, err := it.next()
		n, k := binary.Uvarint(lens)
		if err != nil || k <= 0 {
			return q.blockError(p, m, errCorrupt)
		}
		lens = lens[k:]
		if ts >= sc.end {
			break
		}
		if ts >= sc.start {
			if st == nil {
				st = sc.stream(src)
			}
			b := sc.bucket(ts)
			st.Rows[b]++
			st.Bytes[b] += int64(n)
		}
	}
	return nil
}
