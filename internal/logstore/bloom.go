package logstore

import "sync"

// Every block carries a bloom filter of the ASCII-lower-cased byte trigrams
// of its messages. A substring of a line has all its trigrams in the line,
// and lower-casing both sides keeps that true, so one filter prunes both
// case-sensitive (Contains) and ASCII case-insensitive (ContainsFold) filters
// without false negatives. Strings shorter than three bytes cannot prune.

const (
	bloomBitsPerKey = 8 // ~2.4% false positives per absent trigram with k=4
	bloomHashes     = 4
)

// trigramSet collects the distinct trigrams of a block's messages. A trigram
// is three bytes packed into 24 bits, so membership is one bit in a 2 MiB
// bitmap; only the words touched by real text get hot in cache.
type trigramSet struct {
	bits []uint64
	list []uint32
}

func newTrigramSet() *trigramSet { return &trigramSet{bits: make([]uint64, 1<<24/64)} }

// trigramSets are the sets of the block encoders, lent for one block: a
// store (one per tenant) holds none while it does not encode, so the 2 MiB
// of each are paid per block encoded at once, not per store open.
var trigramSets = sync.Pool{New: func() any { return newTrigramSet() }}

func (t *trigramSet) add(s string) {
	if len(s) < 3 {
		return
	}
	bits := t.bits[:1<<24/64]
	v := uint32(lowerTable[s[0]])<<8 | uint32(lowerTable[s[1]])
	for i := 2; i < len(s); i++ {
		v = (v<<8 | uint32(lowerTable[s[i]])) & 0xffffff
		w, m := v>>6, uint64(1)<<(v&63)
		if bits[w]&m == 0 {
			bits[w] |= m
			t.list = append(t.list, v)
		}
	}
}

func (t *trigramSet) reset() {
	for _, v := range t.list {
		t.bits[v>>6] = 0
	}
	t.list = t.list[:0]
}

// needleTrigrams returns the distinct lower-cased trigrams of the filter
// strings that are long enough to prune.
func needleTrigrams(needles ...[]string) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	for _, ns := range needles {
		for _, s := range ns {
			if len(s) < 3 {
				continue
			}
			v := uint32(lowerTable[s[0]])<<8 | uint32(lowerTable[s[1]])
			for i := 2; i < len(s); i++ {
				v = (v<<8 | uint32(lowerTable[s[i]])) & 0xffffff
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	return out
}

func bloomHash(key uint32) (uint32, uint32) {
	// fmix64 of MurmurHash3: every input bit affects every output bit.
	h := uint64(key)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h), uint32(h>>32) | 1
}

// appendBloom appends a filter holding keys: bloomBitsPerKey bits per key,
// rounded up to whole 64-bit words, at least one word.
func appendBloom(dst []byte, keys []uint32) []byte {
	words := (len(keys)*bloomBitsPerKey + 63) / 64
	if words == 0 {
		words = 1
	}
	n := len(dst)
	dst = append(dst, make([]byte, words*8)...)
	b := dst[n:]
	m := uint64(len(b) * 8)
	for _, k := range keys {
		h1, h2 := bloomHash(k)
		for i := 0; i < bloomHashes; i++ {
			pos := uint64(h1) * m >> 32
			b[pos>>3] |= 1 << (pos & 7)
			h1 += h2
		}
	}
	return dst
}

// bloomMayContainAll reports whether the filter may hold every key.
func bloomMayContainAll(b []byte, keys []uint32) bool {
	if len(b) == 0 {
		return true // no filter: cannot prune
	}
	m := uint64(len(b) * 8)
	for _, k := range keys {
		h1, h2 := bloomHash(k)
		for i := 0; i < bloomHashes; i++ {
			pos := uint64(h1) * m >> 32
			if b[pos>>3]&(1<<(pos&7)) == 0 {
				return false
			}
			h1 += h2
		}
	}
	return true
}
