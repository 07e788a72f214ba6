// Package binenc reads and writes the binary encodings Vigil uses: unsigned
// and zig-zag varints, little-endian fixed-size integers, and
// length-prefixed (uvarint) bytes and strings. The log store's records, the
// span store's spans and segments, and the fast OTLP trace decoder (whose
// protobuf wire format is made of the same pieces) all read with one
// Reader.
//
// Writers are append-style and complement encoding/binary's AppendUvarint,
// AppendVarint and LittleEndian.AppendUint32/64.
package binenc

import (
	"encoding/binary"
	"errors"
)

// ErrCorrupt is what Reader.Err reports after a read ran past the end of
// the input or met a malformed varint or length.
var ErrCorrupt = errors.New("truncated or malformed binary data")

// Reader reads fields from a byte slice, checking every read against what
// is left. The first read that cannot be satisfied, or a call to Fail,
// makes the Reader fail: that read and every later one return zero values
// (nil slices, empty strings) and Err returns ErrCorrupt. A decoder can so
// read a whole record and check Err once.
//
// Slices returned by Bytes and LenBytes alias the input.
type Reader struct {
	b      []byte
	failed bool
}

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Fail makes r fail, for a decoder that finds a field's value invalid.
func (r *Reader) Fail() { r.b, r.failed = nil, true }

// Err returns ErrCorrupt once r failed, nil before.
func (r *Reader) Err() error {
	if r.failed {
		return ErrCorrupt
	}
	return nil
}

// Len returns the number of bytes not read yet (0 once r failed).
func (r *Reader) Len() int { return len(r.b) }

// More reports whether r has not failed and has bytes left.
func (r *Reader) More() bool { return len(r.b) > 0 }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.b) < 1 {
		r.Fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// Uint32 reads a little-endian uint32.
func (r *Reader) Uint32() uint32 {
	if len(r.b) < 4 {
		r.Fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// Uint64 reads a little-endian uint64.
func (r *Reader) Uint64() uint64 {
	if len(r.b) < 8 {
		r.Fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a zig-zag signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads the next n bytes.
func (r *Reader) Bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.Fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Count reads a uvarint count of items that each take at least minSize
// bytes, and fails if what is left cannot hold them: a corrupt count
// cannot make the caller allocate without bound.
func (r *Reader) Count(minSize int) int {
	n := r.Uvarint()
	if n > uint64(len(r.b)) || minSize > 1 && n > uint64(len(r.b)/minSize) {
		r.Fail()
		return 0
	}
	return int(n)
}

// LenBytes reads a uvarint length and that many bytes.
func (r *Reader) LenBytes() []byte {
	v, rest, ok := CutLenBytes(r.b)
	if !ok {
		r.Fail()
		return nil
	}
	r.b = rest
	return v
}

// LenString reads a uvarint length and that many bytes, as a new string.
func (r *Reader) LenString() string { return string(r.LenBytes()) }

// CutLenBytes splits a uvarint length and that many bytes off the front
// of b: v is those bytes, rest what follows them. ok is false when b does
// not start with a valid length and as many bytes. It is LenBytes for
// loops hot enough to keep the rest in a local variable rather than in a
// Reader.
func CutLenBytes(b []byte) (v, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, b, false
	}
	b = b[k:]
	return b[:n:n], b[n:], true
}

// AppendString appends s with its uvarint length before it.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendBytes appends b with its uvarint length before it.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// UvarintLen returns the size of the uvarint encoding of v.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
