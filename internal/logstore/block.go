package logstore

import (
	"encoding/binary"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// A block holds up to maxBlockRows rows of one stream sorted by timestamp.
// On disk it is a bloom section followed by a columns section (see
// docs/format/logstore.md). Variable-length columns are cut into frames of
// frameRows rows, each compressed on its own, so that a query that needs a
// few rows decodes one frame, not the whole block.

const (
	blockFormatVersion = 2 // 2 added colLen
	maxBlockRows       = 8192
	frameRows          = 1024
)

// Fixed-width columns.
const (
	colTS    = iota // varint first timestamp, then uvarint deltas
	colID           // 16 bytes per row
	colObs          // zig-zag varint of observed - timestamp
	colTrunc        // bitmap; empty when no row is truncated
	colLen          // uvarint message length per row (format 2)
	numSimpleCols
)

// simpleOrder is the order of the simple columns in a block of each
// format version. Timestamps and lengths come first, so that StreamStats
// reads just them: a prefix of the columns section.
var simpleOrder = [...][]int{
	1: {colTS, colID, colObs, colTrunc},
	2: {colTS, colLen, colID, colObs, colTrunc},
}

// Framed columns: per frame, a uvarint length per row then the bytes.
const (
	fcolMsg   = iota
	fcolTrace // trace id
	fcolSpan  // span id
	fcolAttrs // encoded by appendAttrs
	numFramedCols
)

// Chunk codecs. Blocks written from the head use S2, which costs half the
// CPU of zstd's fastest level; merged blocks, which hold nearly all rows
// once the merger has caught up, use zstd, which makes them 30% smaller.
const (
	codecRaw  = 0
	codecZstd = 1
	codecS2   = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// blockMeta is a block's index entry. The block's bloom is at off, its
// columns at off+bloomLen.
type blockMeta struct {
	sid          uint64
	minTs, maxTs int64
	off          int64
	rows         uint32
	bloomLen     uint32
	colsLen      uint32
	bloomCRC     uint32
	colsCRC      uint32
	seq          uint64 // WAL segment the rows were flushed from (max, for merged blocks)
	flags        byte
	// With flagStats: the message bytes of all rows, and the length and
	// CRC of the prefix of the columns section that ends with colLen.
	bytes    int64
	statsLen uint32
	statsCRC uint32
}

// Block flags.
const (
	flagMerged = 1 << iota // written by a merge (zstd), not from the head (S2)
	// flagStats: the block is of format 2 and its index entry carries its
	// message bytes, so volumes are summed from the index; a block that a
	// bucket edge cuts through is counted from its timestamps and lengths
	// alone. Blocks written before lack it and are read whole instead.
	flagStats
)

func (b *blockMeta) end() int64 { return b.off + int64(b.bloomLen) + int64(b.colsLen) }

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		panic(err) // only fails on invalid options
	}
	return d
})

// blockEncoder turns rows into blocks. It is used by one goroutine at a time
// and keeps its buffers between blocks.
type blockEncoder struct {
	codec   byte // codecS2 or codecZstd
	zenc    *zstd.Encoder
	hdr     []byte
	payload []byte
	raw     []byte
	comp    []byte
}

func newBlockEncoder(codec byte) *blockEncoder {
	z, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), // blocks carry their own CRC
		zstd.WithZeroFrames(true))
	if err != nil {
		panic(err) // only fails on invalid options
	}
	return &blockEncoder{codec: codec, zenc: z}
}

func (e *blockEncoder) chunk(raw []byte, compress bool) {
	codec, data := byte(codecRaw), raw
	if compress && len(raw) >= 64 {
		if e.codec == codecZstd {
			e.comp = e.zenc.EncodeAll(raw, e.comp[:0])
		} else {
			if n := s2.MaxEncodedLen(len(raw)); cap(e.comp) < n {
				e.comp = make([]byte, n)
			}
			e.comp = s2.Encode(e.comp[:cap(e.comp)], raw)
		}
		if len(e.comp) < len(raw)-len(raw)/16 {
			codec, data = e.codec, e.comp
		}
	}
	e.hdr = append(e.hdr, codec)
	e.hdr = binary.AppendUvarint(e.hdr, uint64(len(raw)))
	e.hdr = binary.AppendUvarint(e.hdr, uint64(len(data)))
	e.payload = append(e.payload, data...)
}

// encode appends to dst the block of rows[i] for i in idx, which must be in
// timestamp order, and returns dst and the block's meta, with off the
// block's position in dst.
func (e *blockEncoder) encode(dst []byte, sid uint64, rows []row, idx []int32) ([]byte, blockMeta) {
	n := len(idx)
	m := blockMeta{sid: sid, rows: uint32(n), minTs: rows[idx[0]].ts, maxTs: rows[idx[n-1]].ts, flags: flagStats}
	if e.codec == codecZstd {
		m.flags |= flagMerged
	}
	e.hdr = append(e.hdr[:0], blockFormatVersion)
	e.hdr = binary.AppendUvarint(e.hdr, uint64(n))
	e.hdr = binary.AppendUvarint(e.hdr, frameRows)
	e.payload = e.payload[:0]

	// Timestamps: the first, then the differences in units of the largest
	// of µs, ms or s they are all multiples of (lines parsed from files
	// often have millisecond timestamps).
	var unit int64 = 1
	for _, u := range []int64{1e9, 1e6, 1e3} {
		prev, ok := m.minTs, true
		for _, i := range idx {
			if (rows[i].ts-prev)%u != 0 {
				ok = false
				break
			}
			prev = rows[i].ts
		}
		if ok {
			unit = u
			break
		}
	}
	raw := binary.AppendVarint(e.raw[:0], m.minTs)
	raw = binary.AppendUvarint(raw, uint64(unit))
	prev := m.minTs
	for _, i := range idx {
		raw = binary.AppendUvarint(raw, uint64((rows[i].ts-prev)/unit))
		prev = rows[i].ts
	}
	e.chunk(raw, true)
	// Message lengths, for volumes without the messages.
	raw = raw[:0]
	for _, i := range idx {
		raw = binary.AppendUvarint(raw, uint64(len(rows[i].msg)))
		m.bytes += int64(len(rows[i].msg))
	}
	e.chunk(raw, true)
	statsPayload := len(e.payload)
	// Ids: random by construction, never compressible.
	raw = raw[:0]
	for _, i := range idx {
		raw = append(raw, rows[i].id[:]...)
	}
	e.chunk(raw, false)
	// Observed timestamps, as the delay after the timestamp.
	raw = raw[:0]
	for _, i := range idx {
		raw = binary.AppendVarint(raw, rows[i].obs-rows[i].ts)
	}
	e.chunk(raw, true)
	// Truncated flags.
	raw = raw[:0]
	for k, i := range idx {
		if rows[i].trunc {
			if len(raw) == 0 {
				raw = append(raw, make([]byte, (n+7)/8)...)
			}
			raw[k>>3] |= 1 << (k & 7)
		}
	}
	e.chunk(raw, false)

	// Framed columns; the trigrams of messages go to the bloom.
	tri := trigramSets.Get().(*trigramSet)
	for c := range numFramedCols {
		for lo := 0; lo < n; lo += frameRows {
			hi := min(lo+frameRows, n)
			raw = raw[:0]
			for _, i := range idx[lo:hi] {
				raw = binary.AppendUvarint(raw, uint64(len(rows[i].field(c))))
			}
			for _, i := range idx[lo:hi] {
				f := rows[i].field(c)
				raw = append(raw, f...)
				if c == fcolMsg {
					tri.add(f)
				}
			}
			e.chunk(raw, true)
		}
	}
	e.raw = raw

	start := len(dst)
	m.off = int64(start)
	dst = appendBloom(dst, tri.list)
	tri.reset()
	trigramSets.Put(tri)
	m.bloomLen = uint32(len(dst) - start)
	m.bloomCRC = crc(dst[start:])
	colsStart := len(dst)
	dst = append(dst, e.hdr...)
	dst = append(dst, e.payload...)
	m.colsLen = uint32(len(dst) - colsStart)
	m.colsCRC = crc(dst[colsStart:])
	m.statsLen = uint32(len(e.hdr) + statsPayload)
	m.statsCRC = crc(dst[colsStart : colsStart+int(m.statsLen)])
	return dst, m
}
