package otlptraces

import (
	"strconv"

	"github.com/vigilhq/vigil/internal/model"
)

// The messages of an ExportTraceServiceRequest below ResourceSpans, decoded
// for decodeFast. Each returns ok=false when pdata must decide.

// messageWithItems decodes a message whose field 1 is a header (at most
// one), field 2 repeated items and field 3 a schema URL — ResourceSpans and
// ScopeSpans: header gets field 1 first, wherever it sits, then item each
// field 2 in order. Any other field, or a false from a callback, fails.
func messageWithItems(b []byte, header, item func([]byte) bool) bool {
	headers := 0
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 1:
			if headers++; headers > 1 || !d.expect(wt, wtLen) || !header(d.LenBytes()) {
				return false
			}
		case 2:
			d.expect(wt, wtLen)
			d.LenBytes()
		case 3:
			d.expect(wt, wtLen)
			d.str()
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	if !d.ok() {
		return false
	}
	d = newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		if num != 2 {
			d.skip(wt)
			continue
		}
		if !item(d.LenBytes()) {
			return false
		}
	}
	return d.ok()
}

func decodeResourceSpans(dst []model.Span, b []byte) ([]model.Span, bool) {
	var base model.Span
	ok := messageWithItems(b,
		func(h []byte) bool { return decodeResource(&base, h) },
		func(ss []byte) bool {
			var ok bool
			dst, ok = decodeScopeSpans(dst, ss, &base)
			return ok
		})
	return dst, ok
}

func decodeResource(base *model.Span, b []byte) bool {
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 1:
			if !d.expect(wt, wtLen) {
				return false
			}
			k, v, ok := decodeKeyValue(d.LenBytes())
			if !ok || v.array != nil {
				return false
			}
			switch k {
			case model.AttrServiceName, model.AttrHostName, model.AttrEnv, model.AttrEnvLegacy:
				s, ok := v.text()
				if !ok {
					return false
				}
				switch k {
				case model.AttrServiceName:
					base.Service = s
				case model.AttrHostName:
					base.Host = s
				default:
					base.Env = s
				}
			case model.AttrGrade:
				var g int64
				switch v.typ {
				case model.AttrInt64:
					g = v.i
				case model.AttrString:
					g, _ = strconv.ParseInt(v.str, 10, 64)
				default:
					return false
				}
				base.Grade = 0
				if g >= 1 && g <= 4 {
					base.Grade = int(g)
				}
			default:
				base.Process = append(base.Process, v.attr(k))
			}
		case 2:
			d.expect(wt, wtVarint)
			d.Uvarint()
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	return d.ok()
}

func decodeScopeSpans(dst []model.Span, b []byte, base *model.Span) ([]model.Span, bool) {
	var name, version string
	ok := messageWithItems(b,
		func(h []byte) bool {
			var ok bool
			name, version, ok = decodeScope(h)
			return ok
		},
		func(sp []byte) bool {
			dst = append(dst, *base)
			s := &dst[len(dst)-1]
			if base.Process != nil {
				// Spans must not share the backing array.
				s.Process = append([]model.TypedAttr(nil), base.Process...)
			}
			return decodeSpan(s, sp, name, version)
		})
	return dst, ok
}

func decodeScope(b []byte) (name, version string, ok bool) {
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 1:
			if d.expect(wt, wtLen) {
				name = d.str()
			}
		case 2:
			if d.expect(wt, wtLen) {
				version = d.str()
			}
		case 3:
			if d.expect(wt, wtLen) {
				if _, _, ok := decodeKeyValue(d.LenBytes()); !ok {
					return "", "", false
				}
			}
		case 4:
			d.expect(wt, wtVarint)
			d.Uvarint()
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	return name, version, d.ok()
}

// id reads a trace or span id field into dst; empty is the zero id.
func (d *pbuf) id(dst []byte) {
	b := d.LenBytes()
	switch len(b) {
	case 0:
		clear(dst)
	case len(dst):
		copy(dst, b)
	default:
		d.Fail()
	}
}

func decodeSpan(s *model.Span, b []byte, scopeName, scopeVersion string) bool {
	var attrs, events, links [][]byte
	var end int64
	var code uint64
	var msg string
	statuses := 0
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 1:
			if d.expect(wt, wtLen) {
				d.id(s.TraceID[:])
			}
		case 2:
			if d.expect(wt, wtLen) {
				d.id(s.SpanID[:])
			}
		case 3:
			if d.expect(wt, wtLen) {
				d.str()
			}
		case 4:
			if d.expect(wt, wtLen) {
				d.id(s.ParentSpanID[:])
			}
		case 5:
			if d.expect(wt, wtLen) {
				s.Name = d.str()
			}
		case 6:
			if d.expect(wt, wtVarint) {
				s.Kind = model.SpanKind(d.Uvarint())
			}
		case 7:
			if d.expect(wt, wtI64) {
				s.StartTime = int64(d.Uint64())
			}
		case 8:
			if d.expect(wt, wtI64) {
				end = int64(d.Uint64())
			}
		case 9:
			if d.expect(wt, wtLen) {
				attrs = append(attrs, d.LenBytes())
			}
		case 11:
			if d.expect(wt, wtLen) {
				events = append(events, d.LenBytes())
			}
		case 13:
			if d.expect(wt, wtLen) {
				links = append(links, d.LenBytes())
			}
		case 10, 12, 14:
			if d.expect(wt, wtVarint) {
				d.Uvarint()
			}
		case 15:
			if statuses++; statuses > 1 || !d.expect(wt, wtLen) {
				return false
			}
			var ok bool
			if code, msg, ok = decodeStatus(d.LenBytes()); !ok {
				return false
			}
		case 16:
			if d.expect(wt, wtI32) {
				s.Flags = d.Uint32()
			}
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	if !d.ok() || uint64(s.Kind) > 5 || code > 2 {
		return false // unknown enum values: as pdata converts them
	}
	if end >= s.StartTime {
		s.Duration = end - s.StartTime
	} else {
		s.Warnings = append(s.Warnings, "end time before start time; duration set to 0")
	}
	s.StatusCode, s.StatusMessage = uint8(code), msg

	if n := len(attrs); n > 0 {
		s.Attributes = make([]model.TypedAttr, 0, n+2)
	}
	if scopeName != "" {
		s.Attributes = append(s.Attributes, model.TypedAttr{Key: AttrScopeName, Str: scopeName})
		if scopeVersion != "" {
			s.Attributes = append(s.Attributes, model.TypedAttr{Key: AttrScopeVersion, Str: scopeVersion})
		}
	}
	for _, a := range attrs {
		k, v, ok := decodeKeyValue(a)
		if !ok {
			return false
		}
		if k == AttrWarnings {
			if v.array != nil {
				if s.Warnings, ok = v.appendStrings(s.Warnings); !ok {
					return false
				}
				continue
			}
			w, ok := v.text()
			if !ok {
				return false
			}
			s.Warnings = append(s.Warnings, w)
			continue
		}
		if v.array != nil {
			return false
		}
		s.Attributes = append(s.Attributes, v.attr(k))
	}
	if len(s.Attributes) == 0 {
		s.Attributes = nil
	}

	if len(events) > 0 {
		s.Events = make([]model.SpanEvent, len(events))
		for i, b := range events {
			if !decodeEvent(&s.Events[i], b) {
				return false
			}
		}
	}

	if len(links) > 0 || !s.ParentSpanID.IsZero() {
		s.References = make([]model.SpanRef, 0, len(links)+1)
	}
	if !s.ParentSpanID.IsZero() {
		s.References = append(s.References, model.SpanRef{Type: model.RefChildOf, TraceID: s.TraceID, SpanID: s.ParentSpanID})
	}
	for _, b := range links {
		r, ok := decodeLink(b)
		if !ok {
			return false
		}
		s.References = append(s.References, r)
	}
	return true
}

func decodeStatus(b []byte) (code uint64, msg string, ok bool) {
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 2:
			if d.expect(wt, wtLen) {
				msg = d.str()
			}
		case 3:
			if d.expect(wt, wtVarint) {
				code = d.Uvarint()
			}
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	return code, msg, d.ok()
}

func decodeEvent(e *model.SpanEvent, b []byte) bool {
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 1:
			if d.expect(wt, wtI64) {
				e.Time = int64(d.Uint64())
			}
		case 2:
			if d.expect(wt, wtLen) {
				e.Name = d.str()
			}
		case 3:
			if !d.expect(wt, wtLen) {
				return false
			}
			k, v, ok := decodeKeyValue(d.LenBytes())
			if !ok || v.array != nil {
				return false
			}
			e.Attributes = append(e.Attributes, v.attr(k))
		case 4:
			if d.expect(wt, wtVarint) {
				d.Uvarint()
			}
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	return d.ok()
}

func decodeLink(b []byte) (model.SpanRef, bool) {
	r := model.SpanRef{Type: model.RefFollowsFrom}
	seen := false
	d := newPbuf(b)
	for d.More() {
		num, wt := d.tag()
		switch num {
		case 1:
			if d.expect(wt, wtLen) {
				d.id(r.TraceID[:])
			}
		case 2:
			if d.expect(wt, wtLen) {
				d.id(r.SpanID[:])
			}
		case 3:
			if d.expect(wt, wtLen) {
				d.str()
			}
		case 4:
			if !d.expect(wt, wtLen) {
				return r, false
			}
			k, v, ok := decodeKeyValue(d.LenBytes())
			if !ok {
				return r, false
			}
			if k == AttrRefType && !seen { // the first, as Map.Get
				seen = true
				if v.typ == model.AttrString && v.str == RefTypeChildOf {
					r.Type = model.RefChildOf
				}
			}
		case 5:
			if d.expect(wt, wtVarint) {
				d.Uvarint()
			}
		case 6:
			if d.expect(wt, wtI32) {
				d.Uint32()
			}
		default:
			d.Fail() // a field unknown here: pdata decides
		}
	}
	return r, d.ok()
}
