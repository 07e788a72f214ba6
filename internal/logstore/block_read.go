package logstore

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/storage"
)

type chunkRef struct {
	codec   byte
	off     int // in blockCols.raw
	rawLen  int
	compLen int
}

// blockCols is a block's columns section, decoded lazily: timestamps on
// open, everything else when first needed. Strings returned point into
// buffers owned by the blockCols.
type blockCols struct {
	raw       []byte
	version   byte // block format
	rows      int
	frameRows int
	nframes   int
	simple    [numSimpleCols]chunkRef
	framed    [numFramedCols][]chunkRef

	ts    []int64
	ids   []byte
	obs   []int64
	trunc []byte
	strs  [numFramedCols][]string // per row, filled frame by frame
	done  [numFramedCols][]bool   // per frame

	pooled    bool     // decode into pooled buffers
	bufs      [][]byte // pooled buffers in use
	pooledRaw []byte   // raw, if it came from the pool
}

// parseBlockCols parses a columns section and decodes the timestamps.
func parseBlockCols(raw []byte) (*blockCols, error) {
	b, err := parseColsHeader(raw, len(raw))
	if err != nil {
		return nil, err
	}
	b.raw = raw
	if err := b.decodeTS(); err != nil {
		return nil, err
	}
	return b, nil
}

// parseColsHeader parses the header of a columns section of total bytes
// from raw, which may be just a prefix of it.
func parseColsHeader(raw []byte, total int) (*blockCols, error) {
	b := &blockCols{}
	if len(raw) == 0 || raw[0] == 0 || int(raw[0]) >= len(simpleOrder) {
		return nil, fmt.Errorf("unknown block format: %w", errCorrupt)
	}
	b.version = raw[0]
	d := binenc.NewReader(raw[1:])
	uv := func() int {
		v := d.Uvarint()
		if v > 1<<31 {
			d.Fail()
			return 0
		}
		return int(v)
	}
	b.rows = uv()
	b.frameRows = uv()
	if d.Err() != nil || b.rows == 0 || b.frameRows == 0 {
		return nil, errCorrupt
	}
	b.nframes = (b.rows + b.frameRows - 1) / b.frameRows
	var refs []*chunkRef
	for _, c := range simpleOrder[b.version] {
		refs = append(refs, &b.simple[c])
	}
	for c := range b.framed {
		b.framed[c] = make([]chunkRef, b.nframes)
		for f := range b.framed[c] {
			refs = append(refs, &b.framed[c][f])
		}
	}
	for _, r := range refs {
		r.codec = d.Byte()
		r.rawLen = uv()
		r.compLen = uv()
		if d.Err() != nil {
			return nil, errCorrupt
		}
	}
	p := len(raw) - d.Len()
	for _, r := range refs {
		r.off = p
		p += r.compLen
		if p > total || r.codec > codecS2 || (r.codec == codecRaw && r.compLen != r.rawLen) {
			return nil, errCorrupt
		}
	}
	return b, nil
}

// buffer returns a buffer of n bytes for decoded data, from the pool when
// the block may recycle its buffers (see release).
func (b *blockCols) buffer(n int) []byte {
	if !b.pooled {
		return make([]byte, n)
	}
	buf := getBuffer(n)
	b.bufs = append(b.bufs, buf)
	return buf
}

// release returns the block's buffers to the pool. Only a block none of
// whose strings escaped may be released: one that yielded no rows.
func (b *blockCols) release() {
	for _, buf := range b.bufs {
		putBuffer(buf)
	}
	b.bufs = nil
	if b.pooledRaw != nil {
		putBuffer(b.pooledRaw)
		b.pooledRaw = nil
	}
}

// bufferPools hold decode buffers by size class: pool i has buffers of at
// least 1<<i bytes.
var bufferPools [40]sync.Pool

func getBuffer(n int) []byte {
	i := bits.Len(uint(max(n, 1) - 1)) // 1<<i >= n
	if p, ok := bufferPools[i].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<i)
}

func putBuffer(b []byte) {
	if c := cap(b); c > 0 {
		bufferPools[bits.Len(uint(c))-1].Put(&b)
	}
}

func (b *blockCols) chunk(r chunkRef) ([]byte, error) {
	data := b.raw[r.off : r.off+r.compLen]
	var out []byte
	var err error
	switch r.codec {
	case codecRaw:
		return data, nil
	case codecS2:
		if n, derr := s2.DecodedLen(data); derr != nil || n != r.rawLen {
			return nil, errCorrupt
		}
		out, err = s2.Decode(b.buffer(r.rawLen), data)
	default:
		out, err = zstdDecoder().DecodeAll(data, b.buffer(r.rawLen)[:0])
	}
	if err != nil {
		return nil, fmt.Errorf("cannot decompress column: %w", err)
	}
	if len(out) != r.rawLen {
		return nil, errCorrupt
	}
	return out, nil
}

func (b *blockCols) decodeTS() error {
	data, err := b.chunk(b.simple[colTS])
	if err != nil {
		return err
	}
	it, err := newTSIter(data)
	if err != nil {
		return err
	}
	b.ts = make([]int64, b.rows)
	for i := range b.ts {
		if b.ts[i], err = it.next(); err != nil {
			return err
		}
	}
	return nil
}

// tsIter walks the timestamps of a decoded ts chunk.
type tsIter struct {
	data []byte
	v    int64
	unit uint64
}

func newTSIter(data []byte) (tsIter, error) {
	v, k := binary.Varint(data)
	if k <= 0 {
		return tsIter{}, errCorrupt
	}
	data = data[k:]
	unit, k := binary.Uvarint(data)
	if k <= 0 || unit == 0 {
		return tsIter{}, errCorrupt
	}
	return tsIter{data: data[k:], v: v, unit: unit}, nil
}

// next returns the next timestamp.
func (it *tsIter) next() (int64, error) {
	d, k := binary.Uvarint(it.data)
	if k <= 0 {
		return 0, errCorrupt
	}
	it.data = it.data[k:]
	it.v += int64(d * it.unit)
	return it.v, nil
}

// loadRest decodes the ids, observed timestamps and truncated flags.
func (b *blockCols) loadRest() error {
	if b.ids != nil {
		return nil
	}
	ids, err := b.chunk(b.simple[colID])
	if err != nil {
		return err
	}
	if len(ids) != 16*b.rows {
		return errCorrupt
	}
	data, err := b.chunk(b.simple[colObs])
	if err != nil {
		return err
	}
	b.obs = make([]int64, b.rows)
	for i := range b.obs {
		d, k := binary.Varint(data)
		if k <= 0 {
			return errCorrupt
		}
		data = data[k:]
		b.obs[i] = b.ts[i] + d
	}
	if b.trunc, err = b.chunk(b.simple[colTrunc]); err != nil {
		return err
	}
	if len(b.trunc) != 0 && len(b.trunc) != (b.rows+7)/8 {
		return errCorrupt
	}
	b.ids = ids
	return nil
}

// loadFrame decodes frame f of framed column c.
func (b *blockCols) loadFrame(c, f int) error {
	if b.done[c] == nil {
		b.done[c] = make([]bool, b.nframes)
		b.strs[c] = make([]string, b.rows)
	}
	if b.done[c][f] {
		return nil
	}
	data, err := b.chunk(b.framed[c][f])
	if err != nil {
		return err
	}
	lo, hi := f*b.frameRows, min((f+1)*b.frameRows, b.rows)
	strs := b.strs[c][lo:hi]
	lens := make([]int, len(strs))
	p, total := 0, 0
	for i := range lens {
		n, k := binary.Uvarint(data[p:])
		if k <= 0 || n > uint64(len(data)) {
			return errCorrupt
		}
		p += k
		lens[i] = int(n)
		total += int(n)
	}
	if len(data)-p != total {
		return errCorrupt
	}
	for i, n := range lens {
		strs[i] = unsafeString(data[p : p+n])
		p += n
	}
	b.done[c][f] = true
	return nil
}

// loadColumn decodes the frames of column c that hold rows [lo, hi).
func (b *blockCols) loadColumn(c, lo, hi int) error {
	for f := lo / b.frameRows; f*b.frameRows < hi; f++ {
		if err := b.loadFrame(c, f); err != nil {
			return err
		}
	}
	return nil
}

func (b *blockCols) str(c, i int) (string, error) {
	if b.done[c] == nil || !b.done[c][i/b.frameRows] {
		if err := b.loadFrame(c, i/b.frameRows); err != nil {
			return "", err
		}
	}
	return b.strs[c][i], nil
}

// fillRow sets row i's fields other than Labels. attrs is scratch space.
func (b *blockCols) fillRow(r *storage.Row, i int) error {
	if err := b.loadRest(); err != nil {
		return err
	}
	var err error
	copy(r.ID[:], b.ids[16*i:])
	r.Timestamp = b.ts[i]
	r.ObservedTimestamp = b.obs[i]
	r.Truncated = len(b.trunc) > 0 && b.trunc[i>>3]&(1<<(i&7)) != 0
	if r.Message, err = b.str(fcolMsg, i); err != nil {
		return err
	}
	if r.TraceID, err = b.str(fcolTrace, i); err != nil {
		return err
	}
	if r.SpanID, err = b.str(fcolSpan, i); err != nil {
		return err
	}
	a, err := b.str(fcolAttrs, i)
	if err != nil {
		return err
	}
	r.Attributes, err = decodeAttrs(r.Attributes[:0], a)
	return err
}

// appendRows appends all rows of the block, fully decoded, for a merge.
func (b *blockCols) appendRows(dst []row) ([]row, error) {
	if err := b.loadRest(); err != nil {
		return nil, err
	}
	for c := range numFramedCols {
		if err := b.loadColumn(c, 0, b.rows); err != nil {
			return nil, err
		}
	}
	for i := 0; i < b.rows; i++ {
		r := row{
			ts: b.ts[i], obs: b.obs[i],
			msg: b.strs[fcolMsg][i], trace: b.strs[fcolTrace][i], span: b.strs[fcolSpan][i], attrs: b.strs[fcolAttrs][i],
			trunc: len(b.trunc) > 0 && b.trunc[i>>3]&(1<<(i&7)) != 0,
		}
		copy(r.id[:], b.ids[16*i:])
		dst = append(dst, r)
	}
	return dst, nil
}
