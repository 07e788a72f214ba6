package otlptraces

import (
	"encoding/binary"
	"math"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
)

// decodeFast decodes an ExportTraceServiceRequest straight into spans,
// without building pdata's tree, which costs the span ingester most of its
// decoding time. It handles what Vigil's own batches and ordinary SDK
// exports hold; on anything else (malformed input, array or map values
// where their text form would be needed, unusual special attributes) it
// reports ok=false and the caller decodes with pdata, whose result it
// otherwise reproduces exactly (FuzzDecodeFast checks this).
func decodeFast(dst []model.Span, data []byte) ([]model.Span, bool) {
	n := len(dst)
	d := pbuf{b: data, ok: true}
	for d.ok && len(d.b) > 0 {
		num, wt := d.tag()
		if num != 1 {
			d.fail()
			break
		}
		if !d.expect(wt, wtLen) {
			break
		}
		var ok bool
		if dst, ok = decodeResourceSpans(dst, d.bytes()); !ok {
			return dst[:n], false
		}
	}
	if !d.ok {
		return dst[:n], false
	}
	return dst, true
}

const (
	wtVarint = 0
	wtI64    = 1
	wtLen    = 2
	wtI32    = 5
)

// pbuf reads protobuf fields; the first error sticks in ok.
type pbuf struct {
	b  []byte
	ok bool
}

func (d *pbuf) fail() { d.ok, d.b = false, nil }

func (d *pbuf) varint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *pbuf) tag() (num uint64, wt int) {
	v := d.varint()
	num, wt = v>>3, int(v&7)
	if num == 0 || num > 1<<29-1 {
		d.fail()
	}
	return num, wt
}

func (d *pbuf) bytes() []byte {
	n := d.varint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *pbuf) fixed64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *pbuf) fixed32() uint32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

// str reads a string field; invalid UTF-8 is left to pdata.
func (d *pbuf) str() string {
	b := d.bytes()
	if !utf8.Valid(b) {
		d.fail()
	}
	return string(b)
}

func (d *pbuf) skip(wt int) {
	switch wt {
	case wtVarint:
		d.varint()
	case wtI64:
		d.fixed64()
	case wtLen:
		d.bytes()
	case wtI32:
		d.fixed32()
	default:
		d.fail()
	}
}

// expect checks a field's wire type, failing on a mismatch.
func (d *pbuf) expect(wt, want int) bool {
	if wt != want {
		d.fail()
	}
	return d.ok
}

// anyValue is a decoded scalar AnyValue, or an array left undecoded.
type anyValue struct {
	typ   model.AttrType
	str   string
	i     int64
	f     float64
	empty bool   // no value set
	array []byte // an ArrayValue, whose text form is left to pdata
}

func decodeAnyValue(b []byte) (v anyValue, ok bool) {
	d := pbuf{b: b, ok: true}
	v.empty = true
	for d.ok && len(d.b) > 0 {
		num, wt := d.tag()
		if !v.empty && num >= 1 && num <= 7 {
			return v, false // several members of the oneof
		}
		switch num {
		case 1:
			if d.expect(wt, wtLen) {
				v = anyValue{typ: model.AttrString, str: d.str()}
			}
		case 2:
			if d.expect(wt, wtVarint) {
				v = anyValue{typ: model.AttrBool}
				if d.varint() != 0 {
					v.i = 1
				}
			}
		case 3:
			if d.expect(wt, wtVarint) {
				v = anyValue{typ: model.AttrInt64, i: int64(d.varint())}
			}
		case 4:
			if d.expect(wt, wtI64) {
				v = anyValue{typ: model.AttrFloat64, f: math.Float64frombits(d.fixed64())}
			}
		case 5:
			if d.expect(wt, wtLen) {
				v = anyValue{array: d.bytes()}
			}
		case 6:
			return v, false
		case 7:
			if d.expect(wt, wtLen) {
				v = anyValue{typ: model.AttrBinary, str: string(d.bytes())}
			}
		default:
			d.fail() // a field unknown here: pdata decides
		}
	}
	if v.empty {
		v.typ = model.AttrString
	}
	return v, d.ok
}

// decodeKeyValue decodes a KeyValue.
func decodeKeyValue(b []byte) (key string, v anyValue, ok bool) {
	d := pbuf{b: b, ok: true}
	v = anyValue{typ: model.AttrString, empty: true}
	for d.ok && len(d.b) > 0 {
		num, wt := d.tag()
		switch num {
		case 1:
			if d.expect(wt, wtLen) {
				key = d.str()
			}
		case 2:
			if d.expect(wt, wtLen) {
				if v, ok = decodeAnyValue(d.bytes()); !ok {
					return key, v, false
				}
			}
		default:
			d.fail() // a field unknown here: pdata decides
		}
	}
	return key, v, d.ok
}

// attr is v as the attribute key; v must not be an array.
func (v anyValue) attr(key string) model.TypedAttr {
	return model.TypedAttr{Key: key, Type: v.typ, Str: v.str, Int: v.i, Float: v.f}
}

// text is v.AsString() for the types the fast path handles.
func (v anyValue) text() (string, bool) {
	return v.str, v.typ == model.AttrString && v.array == nil
}

// appendStrings appends the elements of an array of strings to dst.
func (v anyValue) appendStrings(dst []string) ([]string, bool) {
	d := pbuf{b: v.array, ok: true}
	for d.ok && len(d.b) > 0 {
		num, wt := d.tag()
		if num != 1 {
			d.fail()
			break
		}
		if !d.expect(wt, wtLen) {
			break
		}
		e, ok := decodeAnyValue(d.bytes())
		s, isStr := e.text()
		if !ok || !isStr {
			return dst, false
		}
		dst = append(dst, s)
	}
	return dst, d.ok
}
