package otlptraces

import (
	"math"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/binenc"
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
	d := newPbuf(data)
	for d.More() {
		num, wt := d.tag()
		if num != 1 {
			d.Fail()
			break
		}
		if !d.expect(wt, wtLen) {
			break
		}
		var ok bool
		if dst, ok = decodeResourceSpans(dst, d.LenBytes()); !ok {
			return dst[:n], false
		}
	}
	if !d.ok() {
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

// pbuf reads protobuf fields: varints, fixed64 and fixed32 (little-endian)
// and length-delimited bytes are binenc's; the first error sticks.
type pbuf struct{ binenc.Reader }

func newPbuf(b []byte) pbuf { return pbuf{binenc.NewReader(b)} }

func (d *pbuf) ok() bool { return d.Err() == nil }

func (d *pbuf) tag() (num uint64, wt int) {
	v := d.Uvarint()
	num, wt = v>>3, int(v&7)
	if num == 0 || num > 1<<29-1 {
		d.Fail()
	}
	return num, wt
}

// str reads a string field; invalid UTF-8 is left to pdata.
func (d *pbuf) str() string {
	b := d.LenBytes()
	if !utf8.Valid(b) {
		d.Fail()
	}
	return string(b)
}

func (d *pbuf) skip(wt int) {
	switch wt {
	case wtVarint:
		d.Uvarint()
	case wtI64:
		d.Uint64()
	case wtLen:
		d.LenBytes()
	case wtI32:
		d.Uint32()
	default:
		d.Fail()
	}
}

// expect checks a field's wire type, failing on a mismatch.
func (d *pbuf) expect(wt, want int) bool {
	if wt != want {
		d.Fail()
	}
	return d.ok()
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
	d := newPbuf(b)
	v.empty = true
	for d.More() {
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
				if d.Uvarint() != 0 {
					v.i = 1
				}
			}
		case 3:
			if d.expect(wt, wtVarint) {
				v = anyValue{typ: model.AttrInt64, i: int64(d.Uvarint())}
			}
		case 4:
			if d.expect(wt, wtI64) {
				v = anyValue{typ: model.AttrFloat64, f: math.Float64frombits(d.Uint64())}
			}
		case 5:
			if d.expect(wt, wtLen) {
				v = anyValue{array: d.LenBytes()}
				if !validArray(v.array) {
					return v, false
				}
			}
		case 6:
			return v, false
		case 7:
			if d.expect(wt, wtLen) {
				v = anyValue{typ: model.AttrBinary, str: string(d.LenBytes())}
			}
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	if v.empty {
		v.typ = model.AttrString
	}
	return v, d.ok()
}

// validArray reports whether b is an ArrayValue of values the fast path
// decodes. An array is kept as bytes, its text form left to pdata, but a
// malformed element must still fail here, or the fast path would accept
// what pdata rejects.
func validArray(b []byte) bool {
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		if num != 1 || !d.expect(wt, wtLen) {
			return false
		}
		if _, ok := decodeAnyValue(d.LenBytes()); !ok {
			return false
		}
	}
	return d.ok()
}

// decodeKeyValue decodes a KeyValue.
func decodeKeyValue(b []byte) (key string, v anyValue, ok bool) {
	d := newPbuf(b)
	v = anyValue{typ: model.AttrString, empty: true}
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 1:
			if d.expect(wt, wtLen) {
				key = d.str()
			}
		case 2:
			if d.expect(wt, wtLen) {
				if v, ok = decodeAnyValue(d.LenBytes()); !ok {
					return key, v, false
				}
			}
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	return key, v, d.ok()
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
	d := newPbuf(v.array)
	for d.More() {
		num, wt := d.tag()
		if num != 1 {
			d.Fail()
			break
		}
		if !d.expect(wt, wtLen) {
			break
		}
		e, ok := decodeAnyValue(d.LenBytes())
		s, isStr := e.text()
		if !ok || !isStr {
			return dst, false
		}
		dst = append(dst, s)
	}
	return dst, d.ok()
}
