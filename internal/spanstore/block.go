package spanstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/vigilhq/vigil/internal/binenc"
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
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
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
// span with its location relative to the start of buf. Blocks are
// compressed concurrently.
func appendBlocks(buf []byte, spans []*model.Span, loc func(*model.Span, spanLoc)) ([]byte, error) {
	slices.SortStableFunc(spans, func(a, b *model.Span) int { return bytes.Compare(a.TraceID[:], b.TraceID[:]) })
	type block struct {
		first, end int      // spans[first:end]
		pos        []uint32 // of each span in raw
		raw, rec   []byte
	}
	var blocks []*block
	for i := 0; i < len(spans); {
		bl := &block{first: i}
		j := i
		for ; j < len(spans) && (j == i || len(bl.raw) < blockTarget); j++ {
			bl.pos = append(bl.pos, uint32(len(bl.raw)))
			start := len(bl.raw)
			bl.raw = append(bl.raw, make([]byte, binary.MaxVarintLen32)...)
			bl.raw = appendSpan(bl.raw, spans[j])
			n := len(bl.raw) - start - binary.MaxVarintLen32
			// Move the span left over the unused varint bytes.
			l := binary.PutUvarint(bl.raw[start:], uint64(n))
			copy(bl.raw[start+l:], bl.raw[start+binary.MaxVarintLen32:])
			bl.raw = bl.raw[:start+l+n]
		}
		bl.end = j
		if len(bl.raw) > maxRecord {
			return nil, fmt.Errorf("span %s/%s: block of %d bytes exceeds %d", spans[i].TraceID, spans[i].SpanID, len(bl.raw), maxRecord)
		}
		blocks = append(blocks, bl)
		i = j
	}
	compress := func(bl *block) {
		rec := make([]byte, recHeader, recHeader+1+binary.MaxVarintLen64+len(bl.raw)/2)
		rec = append(rec, codecZstd)
		rec = binary.AppendUvarint(rec, uint64(len(bl.raw)))
		bl.rec = zenc.EncodeAll(bl.raw, rec)
	}
	if workers := min(runtime.GOMAXPROCS(0), len(blocks)); workers > 1 {
		next := make(chan *block)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for bl := range next {
					compress(bl)
				}
			}()
		}
		for _, bl := range blocks {
			next <- bl
		}
		close(next)
		wg.Wait()
	} else {
		for _, bl := range blocks {
			compress(bl)
		}
	}
	for _, bl := range blocks {
		payload := bl.rec[recHeader:]
		if len(payload) > maxRecord {
			return nil, fmt.Errorf("span %s/%s: block of %d bytes exceeds %d", spans[bl.first].TraceID, spans[bl.first].SpanID, len(payload), maxRecord)
		}
		binary.LittleEndian.PutUint32(bl.rec, uint32(len(payload)))
		binary.LittleEndian.PutUint32(bl.rec[4:], crc32.Checksum(payload, crcTable))
		off := len(buf)
		buf = append(buf, bl.rec...)
		for k := bl.first; k < bl.end; k++ {
			loc(spans[k], spanLoc{off: int64(off), size: uint32(len(bl.rec)), pos: bl.pos[k-bl.first]})
		}
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
	d := binenc.NewReader(payload)
	codec, n := d.Byte(), d.Uvarint()
	if d.Err() != nil || n > maxRecord {
		return nil, errCorrupt
	}
	data := payload[len(payload)-d.Len():]
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
	d := binenc.NewReader(raw[pos:])
	b := d.LenBytes()
	if d.Err() != nil {
		return model.Span{}, 0, errCorrupt
	}
	s, err := decodeSpan(b)
	return s, len(raw) - int(pos) - d.Len(), err
}
