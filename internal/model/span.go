package model

import "encoding/hex"

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
