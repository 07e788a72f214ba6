package spanstore

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/vigilhq/vigil/internal/binenc"
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

func appendAttrs(b []byte, attrs []model.TypedAttr) []byte {
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	for _, a := range attrs {
		b = binenc.AppendString(b, a.Key)
		b = append(b, byte(a.Type))
		switch a.Type {
		case model.AttrBool, model.AttrInt64:
			b = binary.AppendVarint(b, a.Int)
		case model.AttrFloat64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Float))
		default:
			b = binenc.AppendString(b, a.Str)
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
		b = binenc.AppendString(b, str)
	}
	b = appendAttrs(b, s.Attributes)
	b = appendAttrs(b, s.Process)
	b = binary.AppendUvarint(b, uint64(len(s.Events)))
	for _, e := range s.Events {
		b = binary.AppendVarint(b, e.Time)
		b = binenc.AppendString(b, e.Name)
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
		b = binenc.AppendString(b, w)
	}
	return b
}

func readAttrs(d *binenc.Reader) []model.TypedAttr {
	n := d.Count(1)
	if n == 0 {
		return nil
	}
	out := make([]model.TypedAttr, n)
	for i := range out {
		a := &out[i]
		a.Key = d.LenString()
		a.Type = model.AttrType(d.Byte())
		switch a.Type {
		case model.AttrBool, model.AttrInt64:
			a.Int = d.Varint()
		case model.AttrFloat64:
			a.Float = math.Float64frombits(d.Uint64())
		case model.AttrString, model.AttrBinary:
			a.Str = d.LenString()
		default:
			d.Fail()
		}
		if d.Err() != nil {
			return nil
		}
	}
	return out
}

// decodeSpan decodes one span encoded by appendSpan.
func decodeSpan(b []byte) (model.Span, error) {
	d := binenc.NewReader(b)
	var s model.Span
	copy(s.TraceID[:], d.Bytes(16))
	copy(s.SpanID[:], d.Bytes(8))
	copy(s.ParentSpanID[:], d.Bytes(8))
	s.Kind = model.SpanKind(d.Byte())
	s.StatusCode = d.Byte()
	s.Flags = uint32(d.Uvarint())
	s.StartTime = d.Varint()
	s.Duration = d.Varint()
	s.Grade = int(d.Varint())
	s.Name = d.LenString()
	s.Service = d.LenString()
	s.Host = d.LenString()
	s.Env = d.LenString()
	s.StatusMessage = d.LenString()
	s.Attributes = readAttrs(&d)
	s.Process = readAttrs(&d)
	if n := d.Count(1); n > 0 {
		s.Events = make([]model.SpanEvent, n)
		for i := range s.Events {
			e := &s.Events[i]
			e.Time = d.Varint()
			e.Name = d.LenString()
			e.Attributes = readAttrs(&d)
			if d.Err() != nil {
				break
			}
		}
	}
	if n := d.Count(1); n > 0 {
		s.References = make([]model.SpanRef, n)
		for i := range s.References {
			r := &s.References[i]
			r.Type = model.RefType(d.Byte())
			copy(r.TraceID[:], d.Bytes(16))
			copy(r.SpanID[:], d.Bytes(8))
		}
	}
	if n := d.Count(1); n > 0 {
		s.Warnings = make([]string, n)
		for i := range s.Warnings {
			s.Warnings[i] = d.LenString()
		}
	}
	if d.Err() != nil || d.Len() != 0 {
		return s, errCorrupt
	}
	return s, nil
}
