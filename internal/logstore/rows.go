package logstore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"unsafe"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/model"
)

// row is one stored row. The head keeps its rows so, and flush and
// compaction encode them into blocks. Attributes are kept encoded (see
// appendAttrs), as in a block.
type row struct {
	ts, obs int64
	id      model.RecordID
	msg     string
	trace   string
	span    string
	attrs   string
	trunc   bool
}

// field returns framed column c of the row.
func (r *row) field(c int) string {
	switch c {
	case fcolMsg:
		return r.msg
	case fcolTrace:
		return r.trace
	case fcolSpan:
		return r.span
	}
	return r.attrs
}

// sortedOrder returns the indexes of rows in timestamp order, stable.
func sortedOrder(rows []row) []int32 {
	idx := make([]int32, len(rows))
	sorted := true
	for i := range idx {
		idx[i] = int32(i)
		if i > 0 && rows[i].ts < rows[i-1].ts {
			sorted = false
		}
	}
	if !sorted {
		slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(rows[a].ts, rows[b].ts) })
	}
	return idx
}

// appendAttrs encodes attributes as a count followed by length-prefixed keys
// and values. No attributes encode as the empty string.
func appendAttrs(dst []byte, attrs []model.Attr) []byte {
	if len(attrs) == 0 {
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(attrs)))
	for _, a := range attrs {
		dst = binenc.AppendString(dst, a.Key)
		dst = binenc.AppendString(dst, a.Value)
	}
	return dst
}

// attrsLen returns len(appendAttrs(nil, attrs)).
func attrsLen(attrs []model.Attr) int {
	if len(attrs) == 0 {
		return 0
	}
	n := binenc.UvarintLen(uint64(len(attrs)))
	for _, a := range attrs {
		n += binenc.UvarintLen(uint64(len(a.Key))) + len(a.Key) + binenc.UvarintLen(uint64(len(a.Value))) + len(a.Value)
	}
	return n
}

var errCorrupt = errors.New("corrupt data")

// decodeAttrs appends the attributes encoded in s to dst. The strings point
// into s.
func decodeAttrs(dst []model.Attr, s string) ([]model.Attr, error) {
	if s == "" {
		return dst, nil
	}
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // #nosec G103 -- a read-only view of s's bytes for decoding; nothing writes through it
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return dst, errCorrupt
	}
	b = b[k:]
	for ; n > 0; n-- {
		key, rest, ok := binenc.CutLenBytes(b)
		val, rest, ok2 := binenc.CutLenBytes(rest)
		if !ok || !ok2 {
			return dst, errCorrupt
		}
		b = rest
		dst = append(dst, model.Attr{Key: unsafeString(key), Value: unsafeString(val)})
	}
	return dst, nil
}

// unsafeString returns a string sharing b's memory; b must not change while
// the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b)) // #nosec G103 -- callers do not change b while the string lives (see above)
}
