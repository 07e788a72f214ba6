package spanstore

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/vigilhq/vigil/internal/model"
)

// A span is encoded as a fixed header followed by varint-prefixed fields.
// The encoding is Vigil's own; docs/jaeger-api.md describes the files.
//
//	trace id (16) span id (8) parent span id (8) kind (1) status (1)
//	uvarint flags, varint start, varint duration, varint grade
//	strings: name, service, host, env, status message
//	attrs: attributes, process; events; references; warnings

var errCorrupt = errors.New("corrupt span record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAttrs(b []byte, attrs []model.TypedAttr) []byte {
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	for _, a := range attrs {
		b = appendString(b, a.Key)
		b = append(b, byte(a.Type))
		switch a.Type {
		case model.AttrBool, model.AttrInt64:
			b = binary.AppendVarint(b, a.Int)
		case model.AttrFloat64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Float))
		default:
			b = appendString(b, a.Str)
		}
	}
	return b
}

// appendSpan appends the encoding of s to b.
func appendSpan(b []byte, s *model.Span) []byte {
	b = append(b, s.TraceID[:]...)
	b = append(b, s.SpanID[:]...)
	b = append(b, s.ParentSpanID[:]...)
	b = append(b, byte(s.Kind), s.StatusCode)
	b = binary.AppendUvarint(b, uint64(s.Flags))
	b = binary.AppendVarint(b, s.StartTime)
	b = binary.AppendVarint(b, s.Duration)
	b = binary.AppendVarint(b, int64(s.Grade))
	for _, str := range [...]string{s.Name, s.Service, s.Host, s.Env, s.StatusMessage} {
		b = appendString(b, str)
	}
	b = appendAttrs(b, s.Attributes)
	b = appendAttrs(b, s.Process)
	b = binary.AppendUvarint(b, uint64(len(s.Events)))
	for _, e := range s.Events {
		b = binary.AppendVarint(b, e.Time)
		b = appendString(b, e.Name)
		b = appendAttrs(b, e.Attributes)
	}
	b = binary.AppendUvarint(b, uint64(len(s.References)))
	for _, r := range s.References {
		b = append(b, byte(r.Type))
		b = append(b, r.TraceID[:]...)
		b = append(b, r.SpanID[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Warnings)))
	for _, w := range s.Warnings {
		b = appendString(b, w)
	}
	return b
}

// decoder reads an encoded span; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return make([]byte, max(n, 0))
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte { return d.bytes(1)[0] }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what is left (each item takes at
// least one byte), so corrupt input cannot ask for a huge allocation.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) string() string { return string(d.bytes(d.count())) }

func (d *decoder) attrs() []model.TypedAttr {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]model.TypedAttr, n)
	for i := range out {
		a := &out[i]
		a.Key = d.string()
		a.Type = model.AttrType(d.byte1())
		switch a.Type {
		case model.AttrBool, model.AttrInt64:
			a.Int = d.varint()
		case model.AttrFloat64:
			a.Float = math.Float64frombits(binary.LittleEndian.Uint64(d.bytes(8)))
		case model.AttrString, model.AttrBinary:
			a.Str = d.string()
		default:
			d.fail()
		}
		if d.err != nil {
			return nil
		}
	}
	return out
}

// decodeSpan decodes one span encoded by appendSpan.
func decodeSpan(b []byte) (model.Span, error) {
	d := decoder{b: b}
	var s model.Span
	copy(s.TraceID[:], d.bytes(16))
	copy(s.SpanID[:], d.bytes(8))
	copy(s.ParentSpanID[:], d.bytes(8))
	s.Kind = model.SpanKind(d.byte1())
	s.StatusCode = d.byte1()
	s.Flags = uint32(d.uvarint())
	s.StartTime = d.varint()
	s.Duration = d.varint()
	s.Grade = int(d.varint())
	s.Name = d.string()
	s.Service = d.string()
	s.Host = d.string()
	s.Env = d.string()
	s.StatusMessage = d.string()
	s.Attributes = d.attrs()
	s.Process = d.attrs()
	if n := d.count(); n > 0 {
		s.Events = make([]model.SpanEvent, n)
		for i := range s.Events {
			e := &s.Events[i]
			e.Time = d.varint()
			e.Name = d.string()
			e.Attributes = d.attrs()
			if d.err != nil {
				break
			}
		}
	}
	if n := d.count(); n > 0 {
		s.References = make([]model.SpanRef, n)
		for i := range s.References {
			r := &s.References[i]
			r.Type = model.RefType(d.byte1())
			copy(r.TraceID[:], d.bytes(16))
			copy(r.SpanID[:], d.bytes(8))
		}
	}
	if n := d.count(); n > 0 {
		s.Warnings = make([]string, n)
		for i := range s.Warnings {
			s.Warnings[i] = d.string()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return s, d.err
}
