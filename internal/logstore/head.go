package logstore

import (
	"sync"
	"unsafe"

	"github.com/vigilhq/vigil/internal/model"
)

type streamKey struct {
	day int32
	sid uint64
}

// memStream holds the head's rows of one stream in one day partition.
type memStream struct {
	streamKey
	labels       model.Labels
	rows         []row
	minTs, maxTs int64
	sorted       bool // rows were appended in timestamp order
}

// head holds the rows written since the last rotation. Writers append under
// mu; queries copy slice headers under mu.RLock and read without it, which
// is safe because rows are only ever appended. A head is frozen (no more
// writes) when it is rotated, then written out by the flusher. The strings
// of its rows point into the WAL records they were written with.
type head struct {
	mu      sync.RWMutex
	streams map[streamKey]*memStream
	bytes   int64 // memory held: WAL records and rows
	rows    int64
	hint    map[streamKey]int // rows per stream in the previous head

	segs []*walSegment // the WAL segments whose rows this head holds
	seq  uint64        // the newest of them

	// Flusher-only: partitions already written when a flush failed half-way.
	written map[int32][]*blockMeta
}

func newHead(seg *walSegment, prev *head) *head {
	h := &head{streams: map[streamKey]*memStream{}}
	if seg != nil {
		h.segs = []*walSegment{seg}
		h.seq = seg.seq
	}
	if prev != nil {
		// Size each stream's rows for what it took last time, instead of
		// growing them by doubling.
		h.hint = make(map[streamKey]int, len(prev.streams))
		for k, ms := range prev.streams {
			h.hint[k] = len(ms.rows) + len(ms.rows)/8
		}
	}
	return h
}

const rowSize = int64(unsafe.Sizeof(row{}))

// insert appends r, a row of rec; callers hold mu.
func (h *head) insert(k streamKey, rec *model.LogRecord, r *row) {
	ms := h.streams[k]
	if ms == nil {
		ms = &memStream{streamKey: k, labels: rec.StreamLabels(), minTs: r.ts, maxTs: r.ts, sorted: true}
		ms.rows = make([]row, 0, max(h.hint[k], 16))
		h.streams[k] = ms
	}
	if n := len(ms.rows); n > 0 && r.ts < ms.rows[n-1].ts {
		ms.sorted = false
	}
	ms.minTs = min(ms.minTs, r.ts)
	ms.maxTs = max(ms.maxTs, r.ts)
	ms.rows = append(ms.rows, *r)
	h.rows++
	h.bytes += rowSize
}

// dropDaysBefore forgets the streams of days before day (retention).
func (h *head) dropDaysBefore(day int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, ms := range h.streams {
		if k.day < day {
			delete(h.streams, k)
			h.rows -= int64(len(ms.rows))
		}
	}
}

// memSnapshot is a query's view of one head stream.
type memSnapshot struct {
	key          streamKey
	labels       model.Labels
	rows         []row
	minTs, maxTs int64
	sorted       bool
}

// snapshot returns the streams accepted by keep, as they are now.
func (h *head) snapshot(keep func(*memStream) bool) []memSnapshot {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []memSnapshot
	for _, ms := range h.streams {
		if keep(ms) {
			n := len(ms.rows)
			out = append(out, memSnapshot{key: ms.streamKey, labels: ms.labels, rows: ms.rows[:n:n], minTs: ms.minTs, maxTs: ms.maxTs, sorted: ms.sorted})
		}
	}
	return out
}
