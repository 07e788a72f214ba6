package model

import (
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"strconv"
)

// TraceID is a 128-bit trace id; a 64-bit id (Jaeger, Zipkin) fills the
// low 8 bytes.
type TraceID [16]byte

// String returns 32 lower-case hex digits.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether the id is unset.
func (id TraceID) IsZero() bool { return id == TraceID{} }

// SpanID is a 64-bit span id.
type SpanID [8]byte

// String returns 16 lower-case hex digits.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether the id is unset.
func (id SpanID) IsZero() bool { return id == SpanID{} }

// AttrType is the type of a typed attribute, as Jaeger tags and OTLP
// attributes carry it.
type AttrType uint8

// Attribute types. Jaeger's tag types map one to one; OTLP arrays and maps
// are kept as their JSON text with AttrString.
const (
	AttrString AttrType = iota
	AttrBool
	AttrInt64
	AttrFloat64
	AttrBinary
)

// TypedAttr is one key/value of a span, a span event or a process.
type TypedAttr struct {
	Key   string
	Type  AttrType
	Str   string // AttrString, and AttrBinary (raw bytes)
	Int   int64  // AttrInt64, and AttrBool (0 or 1)
	Float float64
}

// ValueString is the attribute's value as a string, as tag searches compare
// it: booleans as true/false, numbers in decimal, binary in hex.
func (a TypedAttr) ValueString() string {
	if a.Type == AttrString {
		return a.Str
	}
	return string(a.AppendValueString(nil))
}

// AppendValueString appends a.ValueString() to b.
func (a TypedAttr) AppendValueString(b []byte) []byte {
	switch a.Type {
	case AttrBool:
		return strconv.AppendBool(b, a.Int != 0)
	case AttrInt64:
		return strconv.AppendInt(b, a.Int, 10)
	case AttrFloat64:
		return strconv.AppendFloat(b, a.Float, 'g', -1, 64)
	case AttrBinary:
		return hex.AppendEncode(b, []byte(a.Str))
	}
	return append(b, a.Str...)
}

// SpanKind follows OTLP's numbering.
type SpanKind uint8

// Span kinds.
const (
	SpanKindUnspecified SpanKind = iota
	SpanKindInternal
	SpanKindServer
	SpanKindClient
	SpanKindProducer
	SpanKindConsumer
)

// kindNames are the names Jaeger gives the span kinds (its span.kind tag).
var kindNames = [...]string{SpanKindInternal: "internal", SpanKindServer: "server", SpanKindClient: "client",
	SpanKindProducer: "producer", SpanKindConsumer: "consumer"}

// Name is the name Jaeger gives the kind in its span.kind tag ("server",
// "client", "producer", "consumer", "internal"); "" when unspecified.
func (k SpanKind) Name() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return ""
}

// SpanKindFromName is the kind Name calls name; SpanKindUnspecified for
// any other name.
func SpanKindFromName(name string) SpanKind {
	for k := SpanKindInternal; int(k) < len(kindNames); k++ {
		if kindNames[k] == name {
			return k
		}
	}
	return SpanKindUnspecified
}

// RefType is the type of a span reference, as in Jaeger.
type RefType uint8

// Reference types.
const (
	RefChildOf RefType = iota
	RefFollowsFrom
)

// SpanRef links a span to another: its parent (CHILD_OF) or a cause
// (FOLLOWS_FROM, OTLP links).
type SpanRef struct {
	Type    RefType
	TraceID TraceID
	SpanID  SpanID
}

// SpanEvent is a timestamped annotation (Jaeger log, OTLP event).
type SpanEvent struct {
	Time       int64 // Unix ns
	Name       string
	Attributes []TypedAttr
}

// Span is one span inside Vigil.
type Span struct {
	TraceID TraceID
	SpanID  SpanID
	// ParentSpanID is zero for a root span; the parent also appears in
	// References as CHILD_OF.
	ParentSpanID SpanID
	Name         string // operation name
	Kind         SpanKind
	StartTime    int64 // Unix ns
	Duration     int64 // ns
	Flags        uint32

	// Service, Host, Env and Grade come from the process (resource).
	Service string
	Host    string
	Env     string
	Grade   int

	Attributes []TypedAttr
	// Process holds the other process (resource) attributes.
	Process    []TypedAttr
	Events     []SpanEvent
	References []SpanRef

	// StatusCode follows OTLP: 0 unset, 1 ok, 2 error.
	StatusCode    uint8
	StatusMessage string
	// Warnings are problems found while converting the span (Jaeger's
	// "warnings" field).
	Warnings []string
}

// SharedServerSpanID is the span id Vigil gives the server half of a
// Zipkin shared span (client and server reporting the same span id): FNV-1a
// of the trace id, the shared id and a fixed label, never zero nor the
// shared id. The server half becomes a child of the client half, which
// keeps the shared id; the server's own children, which name the shared id
// as their parent, are read as children of the server half.
func SharedServerSpanID(trace TraceID, shared SpanID) SpanID {
	h := fnv.New64a()
	_, _ = h.Write(trace[:]) // a hash's Write never fails
	_, _ = h.Write(shared[:])
	_, _ = h.Write([]byte("zipkin shared server"))
	var id SpanID
	binary.BigEndian.PutUint64(id[:], h.Sum64())
	if id.IsZero() || id == shared {
		id[7] ^= 1
	}
	return id
}

// IsSharedServer reports whether s is the server half of a Zipkin shared
// span: its id is derived from its parent's.
func (s *Span) IsSharedServer() bool {
	return !s.ParentSpanID.IsZero() && s.SpanID == SharedServerSpanID(s.TraceID, s.ParentSpanID)
}

// ReparentSharedChildren makes the spans of one trace that name a Zipkin
// shared span id as their parent children of its server half, when the
// server half is among them: in Zipkin's model those are the server's own
// children (the client half's only child is the server half), and Jaeger
// shows them so. It changes spans in place.
func ReparentSharedChildren(spans []Span) {
	servers := map[SpanID]SpanID{} // shared id → server half
	for i := range spans {
		if spans[i].IsSharedServer() {
			servers[spans[i].ParentSpanID] = spans[i].SpanID
		}
	}
	if len(servers) == 0 {
		return
	}
	for i := range spans {
		s := &spans[i]
		server, ok := servers[s.ParentSpanID]
		if !ok || s.SpanID == server {
			continue
		}
		for j := range s.References {
			if r := &s.References[j]; r.Type == RefChildOf && r.SpanID == s.ParentSpanID && r.TraceID == s.TraceID {
				r.SpanID = server
			}
		}
		s.ParentSpanID = server
	}
}
