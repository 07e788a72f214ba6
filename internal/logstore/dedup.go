package logstore

import (
	"encoding/binary"
	"math/bits"

	"github.com/vigilhq/vigil/internal/model"
)

// idSet remembers the ids of recently written rows so that a redelivered
// record is skipped. It holds two generations of up to size ids each: when
// the current one is full it becomes the previous one and the previous one
// is forgotten. Duplicates only arrive within the redelivery window of the
// pipeline (a Kafka consumer re-reading from its last committed offset, a
// collector replaying its spool), which is far shorter than the last
// size..2*size rows, so a bounded window is enough.
//
// Keys are 64 bits mixed from the 16-byte id: a false match between distinct
// ids needs a 64-bit collision among ~4M keys. Each generation is an
// open-addressing table kept under half full, so a lookup that misses (the
// common case) costs one cache miss per table, and prefetch overlaps those
// of a whole batch. Forgetting a generation clears its table for reuse.
type idSet struct {
	size      int // ids per generation
	max       int // slots per table: at least 2*size
	cur, prev idTable
}

type idTable struct {
	slots []uint64 // 0 = empty
	shift uint     // 64 - log2(len(slots))
	n     int
}

func newIDSet(size int) *idSet {
	s := &idSet{size: size, max: 1 << bits.Len(uint(2*size-1))}
	s.cur.alloc(min(1024, s.max))
	s.prev.alloc(1)
	return s
}

func (t *idTable) alloc(n int) {
	t.slots = make([]uint64, n)
	t.shift = uint(64 - bits.TrailingZeros(uint(n)))
	t.n = 0
}

func (t *idTable) start(k uint64) uint64 { return (k * 0x9e3779b97f4a7c15) >> t.shift }

// find returns where k is or would go, and whether it is there.
func (t *idTable) find(k uint64) (uint64, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := t.start(k); ; i = (i + 1) & mask {
		switch t.slots[i] {
		case k:
			return i, true
		case 0:
			return i, false
		}
	}
}

func (t *idTable) grow() {
	old := t.slots
	t.alloc(2 * len(old))
	for _, k := range old {
		if k != 0 {
			i, _ := t.find(k)
			t.slots[i] = k
			t.n++
		}
	}
}

// idKey mixes all 16 bytes of id into 64 bits, so that ids that differ in
// any bit (not only hashes) get unrelated keys. It is never 0.
func idKey(id *model.RecordID) uint64 {
	a := binary.LittleEndian.Uint64(id[:8])
	b := binary.LittleEndian.Uint64(id[8:])
	h := a*0x9e3779b97f4a7c15 ^ bits.RotateLeft64(b*0xc2b2ae3d27d4eb4f, 31)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	if h == 0 {
		h = 1
	}
	return h
}

// prefetch loads the slots where keys start their probes into the cache.
// The loads do not depend on each other, so the CPU overlaps their cache
// misses; seen then finds the lines hot. For a batch of a thousand ids this
// halves the time deduplication takes.
func (s *idSet) prefetch(keys []uint64) {
	var sink uint64
	for _, k := range keys {
		sink += s.cur.slots[s.cur.start(k)] + s.prev.slots[s.prev.start(k)]
	}
	prefetchSink = sink
}

//lint:ignore U1000 a sink written so that the compiler keeps the prefetching loads
var prefetchSink uint64

// seen reports whether k (from idKey) was added before, and adds it if not.
func (s *idSet) seen(k uint64) bool {
	i, ok := s.cur.find(k)
	if ok {
		return true
	}
	if _, ok := s.prev.find(k); ok {
		return true
	}
	s.cur.slots[i] = k
	s.cur.n++
	switch {
	case s.cur.n >= s.size:
		// Forget the previous generation; reuse its table.
		s.cur, s.prev = s.prev, s.cur
		if len(s.cur.slots) == s.max {
			clear(s.cur.slots)
			s.cur.n = 0
		} else {
			s.cur.alloc(min(1024, s.max))
		}
	case 2*s.cur.n > len(s.cur.slots) && len(s.cur.slots) < s.max:
		s.cur.grow()
	}
	return false
}
