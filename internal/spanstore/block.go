package spanstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/vigilhq/vigil/internal/model"
)

// A record of a span file is a block of spans:
//
//	uint32 LE payload length | uint32 LE CRC-32C of payload | payload
//	payload: codec byte (0 raw, 1 zstd) | uvarint raw length | data
//	raw data: (uvarint span length | span (appendSpan))…
//
// A Write sorts its spans by trace id and cuts them into blocks of about
// blockTarget raw bytes, so the spans of a trace sit together and a trace
// read decompresses few, small blocks.

const (
	recHeader   = 8
	blockTarget = 32 << 10
	codecRaw    = 0
	codecZstd   = 1
	maxRecord   = 64 << 20
)

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxRecord))
)

// spanLoc is where a span is stored: the block record at off, size bytes,
// and the span at pos in the block's raw data.
type spanLoc struct {
	off  int64
	size uint32
	pos  uint32
}

// appendBlocks appends the records of spans to buf, calling loc for each
// span with its location relative to the start of buf.
func appendBlocks(buf []byte, spans []*model.Span, loc func(*model.Span, spanLoc)) ([]byte, error) {
	slices.SortStableFunc(spans, func(a, b *model.Span) int { return bytes.Compare(a.TraceID[:], b.TraceID[:]) })
	var raw []byte
	var pos []uint32
	for i := 0; i < len(spans); {
		raw, pos = raw[:0], pos[:0]
		j := i
		for ; j < len(spans) && (j == i || len(raw) < blockTarget); j++ {
			pos = append(pos, uint32(len(raw)))
			start := len(raw)
			raw = append(raw, make([]byte, binary.MaxVarintLen32)...)
			raw = appendSpan(raw, spans[j])
			n := len(raw) - start - binary.MaxVarintLen32
			// Move the span left over the unused varint bytes.
			l := binary.PutUvarint(raw[start:], uint64(n))
			copy(raw[start+l:], raw[start+binary.MaxVarintLen32:])
			raw = raw[:start+l+n]
		}
		off := len(buf)
		buf = append(buf, make([]byte, recHeader)...)
		buf = append(buf, codecZstd)
		buf = binary.AppendUvarint(buf, uint64(len(raw)))
		buf = zenc.EncodeAll(raw, buf)
		payload := buf[off+recHeader:]
		if len(payload) > maxRecord || len(raw) > maxRecord {
			return nil, fmt.Errorf("span %s/%s: block of %d bytes exceeds %d", spans[i].TraceID, spans[i].SpanID, len(raw), maxRecord)
		}
		binary.LittleEndian.PutUint32(buf[off:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(buf[off+4:], crc32.Checksum(payload, crcTable))
		for k := i; k < j; k++ {
			loc(spans[k], spanLoc{off: int64(off), size: uint32(len(buf) - off), pos: pos[k-i]})
		}
		i = j
	}
	return buf, nil
}

// blockData checks a whole record (header included) and returns its raw
// span data.
func blockData(rec []byte) ([]byte, error) {
	if len(rec) < recHeader {
		return nil, errCorrupt
	}
	payload := rec[recHeader:]
	if uint32(len(payload)) != binary.LittleEndian.Uint32(rec) || crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(rec[4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	if len(payload) < 1 {
		return nil, errCorrupt
	}
	codec := payload[0]
	n, l := binary.Uvarint(payload[1:])
	if l <= 0 || n > maxRecord {
		return nil, errCorrupt
	}
	data := payload[1+l:]
	switch codec {
	case codecRaw:
		if uint64(len(data)) != n {
			return nil, errCorrupt
		}
		return data, nil
	case codecZstd:
		raw, err := zdec.DecodeAll(data, make([]byte, 0, n))
		if err != nil || uint64(len(raw)) != n {
			return nil, fmt.Errorf("%w: cannot decompress block: %v", errCorrupt, err)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%w: unknown codec %d", errCorrupt, codec)
}

// spanAt decodes the span at pos of a block's raw data.
func spanAt(raw []byte, pos uint32) (model.Span, int, error) {
	if int(pos) >= len(raw) {
		return model.Span{}, 0, errCorrupt
	}
	n, l := binary.Uvarint(raw[pos:])
	if l <= 0 || n > uint64(len(raw)-int(pos)-l) {
		return model.Span{}, 0, errCorrupt
	}
	s, err := decodeSpan(raw[int(pos)+l : int(pos)+l+int(n)])
	return s, l + int(n), err
}
