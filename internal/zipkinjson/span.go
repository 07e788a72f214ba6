package zipkinjson

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// Attribute keys, as the OpenTelemetry Collector's Zipkin receiver names
// them (semantic conventions v1.6.1).
const (
	AttrHostIP      = "net.host.ip"   // localEndpoint.ipv4 (or ipv6), a process attribute
	AttrHostIPv6    = "net.host.ipv6" // localEndpoint.ipv6 when ipv4 is also set
	AttrHostPort    = "net.host.port" // localEndpoint.port, a process attribute
	AttrPeerService = "peer.service"  // remoteEndpoint.serviceName
	AttrPeerIP      = "net.peer.ip"   // remoteEndpoint.ipv4 (or ipv6)
	AttrPeerIPv6    = "net.peer.ipv6" // remoteEndpoint.ipv6 when ipv4 is also set
	AttrPeerPort    = "net.peer.port"
	AttrShared      = "zipkin.shared" // true for a span that shares its id with the client's
	TagError        = "error"
	TagStatusCode   = "otel.status_code"
	TagStatusDesc   = "otel.status_description"
	TagSpanKind     = "span.kind"
)

// maxMicros is the largest time in µs whose nanoseconds fit an int64.
const maxMicros = math.MaxInt64 / 1000

// FlagSampled and FlagDebug are the span flags set on decoded spans
// (Jaeger's bits): every reported Zipkin span is sampled, and "debug": true
// adds FlagDebug.
const (
	FlagSampled = 1
	FlagDebug   = 2
)

func decodeSpan(s *model.Span, v *fastjson.Value) *SpanError {
	if v.Type() != fastjson.TypeObject {
		return &SpanError{Msg: "want a JSON object, got " + v.Type().String()}
	}
	var e *SpanError
	var tid, id, pid string
	if tid, e = str(v, "traceId", true); e != nil {
		return e
	}
	switch len(tid) {
	case 32:
		e = decodeHex(s.TraceID[:], tid, "traceId", "16 or 32")
	case 16:
		e = decodeHex(s.TraceID[8:], tid, "traceId", "16 or 32")
	default:
		e = &SpanError{Field: "traceId", Msg: fmt.Sprintf("want 16 or 32 hex digits, got %q", tid)}
	}
	if e != nil {
		return e
	}
	if s.TraceID.IsZero() {
		return &SpanError{Field: "traceId", Msg: "must not be all zeros"}
	}
	if id, e = str(v, "id", true); e != nil {
		return e
	}
	if e = decodeHex(s.SpanID[:], id, "id", "16"); e != nil {
		return e
	}
	if s.SpanID.IsZero() {
		return &SpanError{Field: "id", Msg: "must not be all zeros"}
	}
	if pid, e = str(v, "parentId", false); e != nil {
		return e
	}
	if pid != "" {
		if e = decodeHex(s.ParentSpanID[:], pid, "parentId", "16"); e != nil {
			return e
		}
		if s.ParentSpanID == s.SpanID { // as the OpenTelemetry receiver: not a parent
			s.ParentSpanID = model.SpanID{}
		}
		if !s.ParentSpanID.IsZero() {
			s.References = []model.SpanRef{{Type: model.RefChildOf, TraceID: s.TraceID, SpanID: s.ParentSpanID}}
		}
	}
	if s.Name, e = str(v, "name", false); e != nil {
		return e
	}
	kind, e := str(v, "kind", false)
	if e != nil {
		return e
	}
	switch kind {
	case "":
	case "CLIENT":
		s.Kind = model.SpanKindClient
	case "SERVER":
		s.Kind = model.SpanKindServer
	case "PRODUCER":
		s.Kind = model.SpanKindProducer
	case "CONSUMER":
		s.Kind = model.SpanKindConsumer
	default:
		return &SpanError{Field: "kind", Msg: fmt.Sprintf("want CLIENT, SERVER, PRODUCER or CONSUMER, got %q", kind)}
	}
	ts, hasTS, e := micros(v.Get("timestamp"), "timestamp")
	if e != nil {
		return e
	}
	s.StartTime = ts
	if !hasTS {
		s.Warnings = append(s.Warnings, "zipkin span has no timestamp; start time set to 0")
	}
	if s.Duration, _, e = micros(v.Get("duration"), "duration"); e != nil {
		return e
	}
	s.Flags = FlagSampled
	if debug, e := boolean(v, "debug"); e != nil {
		return e
	} else if debug {
		s.Flags |= FlagDebug
	}
	shared, e := boolean(v, "shared")
	if e != nil {
		return e
	}

	if e = localEndpoint(s, v.Get("localEndpoint")); e != nil {
		return e
	}
	if e = tags(s, v.Get("tags")); e != nil {
		return e
	}
	if s.Service == "" {
		s.Service = DefaultService
	}
	if e = remoteEndpoint(s, v.Get("remoteEndpoint")); e != nil {
		return e
	}
	if shared {
		s.Attributes = append(s.Attributes, model.TypedAttr{Key: AttrShared, Type: model.AttrBool, Int: 1})
		if s.Kind == model.SpanKindServer {
			unshare(s)
		}
	}
	return annotations(s, v.Get("annotations"))
}

// unshare gives the server half of a shared span (Zipkin's one span per
// RPC: client and server report the same span id) an id of its own, derived
// from the trace and shared ids so that a resent span gets the same one,
// and makes it a child of the client half, which keeps the shared id. Both
// halves are then distinct spans, as Jaeger shows them.
func unshare(s *model.Span) {
	shared := s.SpanID
	s.SpanID = model.SharedServerSpanID(s.TraceID, shared)
	s.ParentSpanID = shared
	s.References = []model.SpanRef{{Type: model.RefChildOf, TraceID: s.TraceID, SpanID: shared}}
}

func present(v *fastjson.Value) bool { return v != nil && v.Type() != fastjson.TypeNull }

// str returns the string field; null or absent is "", or an error if required.
func str(v *fastjson.Value, field string, required bool) (string, *SpanError) {
	f := v.Get(field)
	if !present(f) {
		if required {
			return "", &SpanError{Field: field, Msg: "required field is missing"}
		}
		return "", nil
	}
	b, err := f.StringBytes()
	if err != nil {
		return "", &SpanError{Field: field, Msg: "want a string, got " + f.Type().String()}
	}
	return string(b), nil
}

func boolean(v *fastjson.Value, field string) (bool, *SpanError) {
	f := v.Get(field)
	if !present(f) {
		return false, nil
	}
	b, err := f.Bool()
	if err != nil {
		return false, &SpanError{Field: field, Msg: "want true or false, got " + f.Type().String()}
	}
	return b, nil
}

func decodeHex(dst []byte, s, field, digits string) *SpanError {
	if len(s) != 2*len(dst) {
		return &SpanError{Field: field, Msg: fmt.Sprintf("want %s hex digits, got %q", digits, s)}
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return &SpanError{Field: field, Msg: fmt.Sprintf("want %s hex digits, got %q", digits, s)}
	}
	return nil
}

// micros returns a time or duration in µs as ns.
func micros(f *fastjson.Value, field string) (int64, bool, *SpanError) {
	if !present(f) {
		return 0, false, nil
	}
	if f.Type() != fastjson.TypeNumber {
		return 0, false, &SpanError{Field: field, Msg: "want an integer number of microseconds, got " + f.Type().String()}
	}
	n, err := f.Int64()
	if err != nil || n < 0 || n > maxMicros {
		return 0, false, &SpanError{Field: field, Msg: fmt.Sprintf("want a non-negative integer number of microseconds, got %s", f)}
	}
	return n * 1000, true, nil
}

type endpoint struct {
	service, ipv4, ipv6 string
	port                int64
}

func decodeEndpoint(v *fastjson.Value, field string) (ep endpoint, e *SpanError) {
	if v.Type() != fastjson.TypeObject {
		return ep, &SpanError{Field: field, Msg: "want an object, got " + v.Type().String()}
	}
	if ep.service, e = str(v, "serviceName", false); e != nil {
		e.Field = field + "." + e.Field
		return ep, e
	}
	for _, ip := range [...]struct {
		name string
		dst  *string
		ok   func(netip.Addr) bool
	}{
		{"ipv4", &ep.ipv4, netip.Addr.Is4},
		{"ipv6", &ep.ipv6, func(a netip.Addr) bool { return a.Is6() && a.Zone() == "" }},
	} {
		s, e := str(v, ip.name, false)
		if e != nil {
			e.Field = field + "." + e.Field
			return ep, e
		}
		if s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !ip.ok(a) {
			return ep, &SpanError{Field: field + "." + ip.name, Msg: fmt.Sprintf("want an %s address, got %q", strings.ToUpper(ip.name[:2])+ip.name[2:], s)}
		}
		*ip.dst = a.String()
	}
	if p := v.Get("port"); present(p) {
		n, err := p.Int64()
		if err != nil || n < 0 || n > 65535 {
			return ep, &SpanError{Field: field + ".port", Msg: fmt.Sprintf("want a port number from 0 to 65535, got %s", p)}
		}
		ep.port = n
	}
	return ep, nil
}

func (ep endpoint) appendAttrs(dst []model.TypedAttr, ipKey, ipv6Key, portKey string) []model.TypedAttr {
	switch {
	case ep.ipv4 != "":
		dst = append(dst, model.TypedAttr{Key: ipKey, Str: ep.ipv4})
		if ep.ipv6 != "" {
			dst = append(dst, model.TypedAttr{Key: ipv6Key, Str: ep.ipv6})
		}
	case ep.ipv6 != "":
		dst = append(dst, model.TypedAttr{Key: ipKey, Str: ep.ipv6})
	}
	if ep.port > 0 {
		dst = append(dst, model.TypedAttr{Key: portKey, Type: model.AttrInt64, Int: ep.port})
	}
	return dst
}

func localEndpoint(s *model.Span, v *fastjson.Value) *SpanError {
	if !present(v) {
		return nil
	}
	ep, e := decodeEndpoint(v, "localEndpoint")
	if e != nil {
		return e
	}
	s.Service = ep.service
	s.Process = ep.appendAttrs(s.Process, AttrHostIP, AttrHostIPv6, AttrHostPort)
	return nil
}

func remoteEndpoint(s *model.Span, v *fastjson.Value) *SpanError {
	if !present(v) {
		return nil
	}
	ep, e := decodeEndpoint(v, "remoteEndpoint")
	if e != nil {
		return e
	}
	if ep.service != "" {
		s.Attributes = append(s.Attributes, model.TypedAttr{Key: AttrPeerService, Str: ep.service})
	}
	s.Attributes = ep.appendAttrs(s.Attributes, AttrPeerIP, AttrPeerIPv6, AttrPeerPort)
	return nil
}

func annotations(s *model.Span, v *fastjson.Value) *SpanError {
	if !present(v) {
		return nil
	}
	arr, err := v.Array()
	if err != nil {
		return &SpanError{Field: "annotations", Msg: "want an array, got " + v.Type().String()}
	}
	if len(arr) == 0 {
		return nil
	}
	s.Events = make([]model.SpanEvent, len(arr))
	for i, a := range arr {
		field := "annotations[" + strconv.Itoa(i) + "]"
		if a.Type() != fastjson.TypeObject {
			return &SpanError{Field: field, Msg: "want an object, got " + a.Type().String()}
		}
		ts, ok, e := micros(a.Get("timestamp"), field+".timestamp")
		if e != nil {
			return e
		}
		if !ok {
			return &SpanError{Field: field + ".timestamp", Msg: "required field is missing"}
		}
		val, e := str(a, "value", true)
		if e != nil {
			e.Field = field + "." + e.Field
			return e
		}
		s.Events[i] = model.SpanEvent{Time: ts, Name: val}
	}
	return nil
}
