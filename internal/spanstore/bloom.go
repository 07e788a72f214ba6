package spanstore

import (
	"encoding/binary"

	"github.com/vigilhq/vigil/internal/model"
)

// bloom is a Bloom filter of trace ids, about 10 bits and 7 probes an id
// (under 1 % false positives). Segments build theirs at open; it is not
// stored.
type bloom []uint64

const bloomProbes = 7

func newBloom(n int) bloom { return make(bloom, max(1, (n*10+63)/64)) }

func bloomHashes(id model.TraceID) (uint64, uint64) {
	// Trace ids are meant to be random, but test and legacy ids are not:
	// mix both halves.
	a := mix64(binary.LittleEndian.Uint64(id[:8]) ^ 0x9e3779b97f4a7c15)
	b := mix64(binary.LittleEndian.Uint64(id[8:]) + a)
	return a, b | 1
}

// mix64 is the finaliser of SplitMix64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (b bloom) add(id model.TraceID) {
	h1, h2 := bloomHashes(id)
	n := uint64(len(b)) * 64
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) % n
		b[bit/64] |= 1 << (bit % 64)
	}
}

func (b bloom) has(id model.TraceID) bool {
	h1, h2 := bloomHashes(id)
	n := uint64(len(b)) * 64
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) % n
		if b[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}
