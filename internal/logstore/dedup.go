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
// Keys are 63 bits of the 16-byte id, mixed: ids are hashes, and a false
// match between distinct ids needs a 63-bit collision among ~4M keys. The
// table is one open-addressing array: a lookup that misses, the common case,
// costs one cache miss. The low bit of a slot tells its generation.
type idSet struct {
	size  int      // ids per generation
	max   int      // slots the table may grow to: load stays under 1/2
	slots []uint64 // 0 = empty
	shift uint     // 64 - log2(len(slots))
	gen   uint64   // generation bit of the current generation
	cur   int      // ids in the current generation
	used  int      // ids in the table
}

func newIDSet(size int) *idSet {
	s := &idSet{size: size, max: 1 << bits.Len(uint(4*size-1))}
	s.alloc(min(1024, s.max))
	return s
}

func (s *idSet) alloc(n int) {
	s.slots = make([]uint64, n)
	s.shift = uint(64 - bits.TrailingZeros(uint(n)))
}

// idKey mixes all 16 bytes of id into 64 bits, so that ids that differ in
// any bit (not only hashes) get unrelated keys.
func idKey(id *model.RecordID) uint64 {
	a := binary.LittleEndian.Uint64(id[:8])
	b := binary.LittleEndian.Uint64(id[8:])
	h := a*0x9e3779b97f4a7c15 ^ bits.RotateLeft64(b*0xc2b2ae3d27d4eb4f, 31)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// prefetch loads the slots where keys start their probes into the cache.
// The loads do not depend on each other, so the CPU overlaps their cache
// misses; seen then finds the lines hot. For a batch of a thousand ids this
// halves the time deduplication takes.
func (s *idSet) prefetch(keys []uint64) {
	var sink uint64
	for _, k := range keys {
		sink += s.slots[((k&^1)*0x9e3779b97f4a7c15)>>s.shift]
	}
	prefetchSink = sink
}

var prefetchSink uint64

// seen reports whether k was added before, and adds it if not.
func (s *idSet) seen(k uint64) bool {
	if k &^= 1; k == 0 {
		k = 2
	}
	mask := uint64(len(s.slots) - 1)
	i := (k * 0x9e3779b97f4a7c15) >> s.shift
	for {
		v := s.slots[i]
		if v == 0 {
			break
		}
		if v&^1 == k {
			return true
		}
		i = (i + 1) & mask
	}
	s.slots[i] = k | s.gen
	s.used++
	s.cur++
	if s.cur >= s.size {
		s.rotate()
	} else if 2*s.used > len(s.slots) && len(s.slots) < s.max {
		s.rehash(2*len(s.slots), 2)
	}
	return false
}

// rotate forgets the previous generation; the current one becomes it.
func (s *idSet) rotate() {
	s.rehash(len(s.slots), s.gen^1)
	s.gen ^= 1
	s.cur = 0
}

// rehash rebuilds the table with n slots, dropping generation drop (2 keeps
// both).
func (s *idSet) rehash(n int, drop uint64) {
	old := s.slots
	s.alloc(n)
	s.used = 0
	mask := uint64(n - 1)
	for _, v := range old {
		if v == 0 || v&1 == drop {
			continue
		}
		i := ((v &^ 1) * 0x9e3779b97f4a7c15) >> s.shift
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = v
		s.used++
	}
}
