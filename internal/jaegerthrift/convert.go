package jaegerthrift

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"

	"github.com/vigilhq/vigil/internal/model"
)

// Tag keys given a meaning by the conversion. They follow the OpenTelemetry
// Collector's Jaeger translator (pkg/translator/jaeger in
// opentelemetry-collector-contrib), so a span stored by Vigil and read back
// through the Jaeger API carries the tags its client sent, and a span that
// crossed the OpenTelemetry Collector looks the same as one sent to Vigil.
const (
	tagSpanKind       = "span.kind"
	tagError          = "error"
	tagStatusCode     = "otel.status_code"
	tagStatusDesc     = "otel.status_description"
	tagHTTPStatusCode = "http.status_code"
	tagHTTPStatusMsg  = "http.status_message"
	tagHostname       = "hostname" // process tag
	logFieldEvent     = "event"    // log field naming the event
)

// convertBatch maps a Batch to spans. The spans of one batch share one
// Process slice (capacity-limited, so appending to it copies); callers must
// not modify its elements in place.
func convertBatch(b *jaeger.Batch) []model.Span {
	var service, host string
	var procAttrs []model.TypedAttr
	if p := b.Process; p != nil {
		service = p.ServiceName
		procAttrs = make([]model.TypedAttr, 0, len(p.Tags))
		for _, t := range p.Tags {
			if t == nil {
				continue
			}
			if t.Key == tagHostname && t.VType == jaeger.TagType_STRING && host == "" {
				host = t.GetVStr()
				continue
			}
			procAttrs = append(procAttrs, convertTag(t))
		}
		if len(procAttrs) == 0 {
			procAttrs = nil
		}
		procAttrs = procAttrs[:len(procAttrs):len(procAttrs)]
	}
	spans := make([]model.Span, 0, len(b.Spans))
	for _, js := range b.Spans {
		if js == nil {
			continue
		}
		spans = append(spans, model.Span{Service: service, Host: host, Process: procAttrs})
		convertSpan(js, &spans[len(spans)-1])
	}
	return spans
}

func convertSpan(js *jaeger.Span, s *model.Span) {
	s.TraceID = traceID(js.TraceIdHigh, js.TraceIdLow)
	binary.BigEndian.PutUint64(s.SpanID[:], uint64(js.SpanId))
	s.Name = js.OperationName
	s.StartTime = js.StartTime * 1000
	s.Duration = js.Duration * 1000
	s.Flags = uint32(js.Flags)

	convertRefs(js, s)

	if len(js.Tags) > 0 {
		s.Attributes = make([]model.TypedAttr, 0, len(js.Tags))
		for _, t := range js.Tags {
			if t == nil {
				continue
			}
			a := convertTag(t)
			if a.Type == model.AttrString && t.VType != jaeger.TagType_STRING {
				s.Warnings = append(s.Warnings, fmt.Sprintf("tag %q has unknown type %d", truncate(t.Key), t.VType))
			}
			s.Attributes = append(s.Attributes, a)
		}
		setKindAndStatus(s)
		if len(s.Attributes) == 0 {
			s.Attributes = nil
		}
	}

	if len(js.Logs) > 0 {
		s.Events = make([]model.SpanEvent, 0, len(js.Logs))
		for _, l := range js.Logs {
			if l == nil {
				continue
			}
			s.Events = append(s.Events, convertLog(l))
		}
	}
}

// convertRefs sets ParentSpanID and References. The parent is parentSpanId,
// or else the first CHILD_OF reference into the same trace, or else the first
// FOLLOWS_FROM one (Jaeger's and the OpenTelemetry Collector's rule). An
// explicit parentSpanId that no reference of either type points to is added
// to the references as CHILD_OF, as Jaeger's MaybeAddParentSpanID does
// (jaeger-client-go sets parentSpanId for a FOLLOWS_FROM-only span too).
func convertRefs(js *jaeger.Span, s *model.Span) {
	parent := js.ParentSpanId
	if parent == 0 {
		var follows int64
		for _, r := range js.References {
			if r == nil || r.TraceIdHigh != js.TraceIdHigh || r.TraceIdLow != js.TraceIdLow {
				continue
			}
			if r.RefType == jaeger.SpanRefType_CHILD_OF {
				parent = r.SpanId
				break
			}
			if follows == 0 && r.RefType == jaeger.SpanRefType_FOLLOWS_FROM {
				follows = r.SpanId
			}
		}
		if parent == 0 {
			parent = follows
		}
	}
	binary.BigEndian.PutUint64(s.ParentSpanID[:], uint64(parent))

	needParentRef := js.ParentSpanId != 0
	for _, r := range js.References {
		if r != nil && r.SpanId == js.ParentSpanId && r.TraceIdHigh == js.TraceIdHigh && r.TraceIdLow == js.TraceIdLow {
			needParentRef = false
			break
		}
	}
	n := len(js.References)
	if needParentRef {
		n++
	}
	if n == 0 {
		return
	}
	s.References = make([]model.SpanRef, 0, n)
	if needParentRef {
		s.References = append(s.References, model.SpanRef{Type: model.RefChildOf, TraceID: s.TraceID, SpanID: s.ParentSpanID})
	}
	for _, r := range js.References {
		if r == nil {
			continue
		}
		ref := model.SpanRef{Type: model.RefChildOf, TraceID: traceID(r.TraceIdHigh, r.TraceIdLow)}
		if r.RefType == jaeger.SpanRefType_FOLLOWS_FROM {
			ref.Type = model.RefFollowsFrom
		} else if r.RefType != jaeger.SpanRefType_CHILD_OF {
			s.Warnings = append(s.Warnings, fmt.Sprintf("reference of unknown type %d read as CHILD_OF", r.RefType))
		}
		binary.BigEndian.PutUint64(ref.SpanID[:], uint64(r.SpanId))
		s.References = append(s.References, ref)
	}
}

func convertLog(l *jaeger.Log) model.SpanEvent {
	ev := model.SpanEvent{Time: l.Timestamp * 1000}
	if len(l.Fields) == 0 {
		return ev
	}
	ev.Attributes = make([]model.TypedAttr, 0, len(l.Fields))
	for _, f := range l.Fields {
		if f == nil {
			continue
		}
		// The OpenTelemetry Collector takes "event" whatever its type; a
		// non-string "event" is kept as a field here rather than lost.
		if f.Key == logFieldEvent && f.VType == jaeger.TagType_STRING && ev.Name == "" {
			ev.Name = f.GetVStr()
			continue
		}
		ev.Attributes = append(ev.Attributes, convertTag(f))
	}
	if len(ev.Attributes) == 0 {
		ev.Attributes = nil
	}
	return ev
}

func convertTag(t *jaeger.Tag) model.TypedAttr {
	a := model.TypedAttr{Key: t.Key}
	switch t.VType {
	case jaeger.TagType_STRING:
		a.Type, a.Str = model.AttrString, t.GetVStr()
	case jaeger.TagType_BOOL:
		a.Type = model.AttrBool
		if t.GetVBool() {
			a.Int = 1
		}
	case jaeger.TagType_LONG:
		a.Type, a.Int = model.AttrInt64, t.GetVLong()
	case jaeger.TagType_DOUBLE:
		a.Type, a.Float = model.AttrFloat64, t.GetVDouble()
	case jaeger.TagType_BINARY:
		a.Type, a.Str = model.AttrBinary, string(t.GetVBinary())
	default:
		// As the OpenTelemetry Collector does.
		a.Type, a.Str = model.AttrString, fmt.Sprintf("<Unknown Jaeger TagType %q>", t.VType.String())
	}
	return a
}

// setKindAndStatus lifts span.kind and the status tags out of s.Attributes,
// following the OpenTelemetry Collector's translator: span.kind always goes
// (its value becomes Kind); error goes only when it is the boolean true;
// otel.status_code always goes and is read only when error is not true;
// otel.status_description goes when read as the message; failing
// http.status_code values set an error status when nothing else did.
func setKindAndStatus(s *model.Span) {
	attrs := s.Attributes
	if i := find(attrs, tagSpanKind); i >= 0 {
		if attrs[i].Type == model.AttrString {
			s.Kind = model.SpanKindFromName(attrs[i].Str)
		}
		attrs = remove(attrs, i)
	}
	takeDesc := func() (string, bool) {
		if i := find(attrs, tagStatusDesc); i >= 0 {
			msg := attrString(attrs[i])
			attrs = remove(attrs, i)
			return msg, true
		}
		return "", false
	}
	var code uint8
	var msg string
	exists := false
	if i := find(attrs, tagError); i >= 0 && attrs[i].Type == model.AttrBool && attrs[i].Int == 1 {
		attrs = remove(attrs, i)
		code, exists = 2, true
		if d, ok := takeDesc(); ok {
			msg = d
		} else if j := find(attrs, tagHTTPStatusMsg); j >= 0 {
			msg = attrString(attrs[j])
		}
	}
	if i := find(attrs, tagStatusCode); i >= 0 {
		if !exists {
			exists = true
			switch strings.ToUpper(attrString(attrs[i])) {
			case "OK":
				code = 1
			case "ERROR":
				code = 2
			}
			if d, ok := takeDesc(); ok {
				msg = d
			}
		}
		attrs = remove(attrs, find(attrs, tagStatusCode))
	} else if i := find(attrs, tagHTTPStatusCode); i >= 0 && !exists {
		if c, ok := httpStatus(attrs[i], s.Kind); ok {
			if c != 0 {
				exists, code = true, c
			}
			if j := find(attrs, tagHTTPStatusMsg); j >= 0 {
				msg = attrString(attrs[j])
			}
		}
	}
	if exists {
		s.StatusCode, s.StatusMessage = code, msg
	}
	s.Attributes = attrs
}

// httpStatus maps an http.status_code tag to a status code as OpenTelemetry's
// HTTP conventions say: 4xx is an error for a client span, unset for a
// server span; any code outside 100–398 is an error.
func httpStatus(a model.TypedAttr, kind model.SpanKind) (uint8, bool) {
	var c int64
	switch a.Type {
	case model.AttrInt64:
		c = a.Int
	case model.AttrString:
		v, err := strconv.ParseInt(a.Str, 10, 0)
		if err != nil {
			return 0, false
		}
		c = v
	default:
		return 0, false
	}
	if c >= 400 && c < 500 {
		switch kind {
		case model.SpanKindClient:
			return 2, true
		case model.SpanKindServer:
			return 0, true
		}
	}
	if c >= 100 && c < 399 {
		return 0, true
	}
	return 2, true
}

// attrString is a's value as a string attribute's; other types give "" as
// pcommon.Value.Str does in the OpenTelemetry Collector.
func attrString(a model.TypedAttr) string {
	if a.Type == model.AttrString {
		return a.Str
	}
	return ""
}

func find(attrs []model.TypedAttr, key string) int {
	for i := range attrs {
		if attrs[i].Key == key {
			return i
		}
	}
	return -1
}

func remove(attrs []model.TypedAttr, i int) []model.TypedAttr {
	return append(attrs[:i], attrs[i+1:]...)
}

func traceID(high, low int64) model.TraceID {
	var id model.TraceID
	binary.BigEndian.PutUint64(id[:8], uint64(high))
	binary.BigEndian.PutUint64(id[8:], uint64(low))
	return id
}
