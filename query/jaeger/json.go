package jaeger

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
)

// The JSON of a trace, field for field as Jaeger's model/json package and
// its UI model write it.

// Trace is one trace.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Span is one span; startTime and duration are in microseconds.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	Flags         uint32      `json:"flags,omitempty"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     uint64      `json:"startTime"`
	Duration      uint64      `json:"duration"`
	Tags          []KeyValue  `json:"tags"`
	Logs          []Log       `json:"logs"`
	ProcessID     string      `json:"processID"`
	Warnings      []string    `json:"warnings"`
}

// Reference is CHILD_OF or FOLLOWS_FROM.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// KeyValue is a typed tag: type string, bool, int64, float64 or binary
// (value base64).
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Log is a span event; timestamp in microseconds.
type Log struct {
	Timestamp uint64     `json:"timestamp"`
	Fields    []KeyValue `json:"fields"`
}

// Process is a service and its tags.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// TraceIDString formats a trace id as Jaeger does: 16 hex digits when the
// high half is zero, else 32.
func TraceIDString(id model.TraceID) string {
	if binary.BigEndian.Uint64(id[:8]) == 0 {
		return fmt.Sprintf("%x", id[8:])
	}
	return id.String()
}

func us(ns int64) uint64 {
	if ns <= 0 {
		return 0
	}
	return uint64(ns / 1000)
}

// jsMaxSafe is the largest integer a JavaScript number holds exactly;
// larger int64 tags are sent as strings, as Jaeger does.
const jsMaxSafe = 1<<53 - 1

func keyValue(a model.TypedAttr) KeyValue {
	kv := KeyValue{Key: a.Key}
	switch a.Type {
	case model.AttrBool:
		kv.Type, kv.Value = "bool", a.Int != 0
	case model.AttrInt64:
		kv.Type, kv.Value = "int64", a.Int
		if a.Int > jsMaxSafe || a.Int < -jsMaxSafe {
			kv.Value = fmt.Sprint(a.Int)
		}
	case model.AttrFloat64:
		kv.Type, kv.Value = "float64", a.Float
		if math.IsNaN(a.Float) || math.IsInf(a.Float, 0) {
			kv.Value = fmt.Sprint(a.Float)
		}
	case model.AttrBinary:
		kv.Type, kv.Value = "binary", []byte(a.Str)
	default:
		kv.Type, kv.Value = "string", a.Str
	}
	return kv
}

func keyValues(attrs []model.TypedAttr) []KeyValue {
	out := make([]KeyValue, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, keyValue(a))
	}
	return out
}

func str(k, v string) KeyValue { return KeyValue{Key: k, Type: "string", Value: v} }

// spanTags are the attributes plus what Jaeger shows as tags: span.kind,
// the OTLP status and error=true.
func spanTags(s *model.Span) []KeyValue {
	tags := keyValues(s.Attributes)
	if k := s.Kind.Name(); k != "" {
		tags = append(tags, str("span.kind", k))
	}
	switch s.StatusCode {
	case 1:
		tags = append(tags, str("otel.status_code", "OK"))
	case 2:
		tags = append(tags, str("otel.status_code", "ERROR"))
		if !slices.ContainsFunc(s.Attributes, func(a model.TypedAttr) bool { return a.Key == "error" }) {
			tags = append(tags, KeyValue{Key: "error", Type: "bool", Value: true})
		}
	}
	if s.StatusMessage != "" {
		tags = append(tags, str("otel.status_description", s.StatusMessage))
	}
	return tags
}

func processOf(s *model.Span) Process {
	tags := keyValues(s.Process)
	has := func(k string) bool {
		return slices.ContainsFunc(s.Process, func(a model.TypedAttr) bool { return a.Key == k })
	}
	if s.Host != "" && !has("host.name") {
		tags = append(tags, str("host.name", s.Host))
	}
	if s.Env != "" && !has("deployment.environment") {
		tags = append(tags, str("deployment.environment", s.Env))
	}
	if s.Grade != 0 && !has("vigil.grade") {
		tags = append(tags, KeyValue{Key: "vigil.grade", Type: "int64", Value: int64(s.Grade)})
	}
	return Process{ServiceName: s.Service, Tags: tags}
}

// processKey identifies a process within a trace.
func processKey(s *model.Span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q %d", s.Service, s.Host, s.Env, s.Grade)
	for _, a := range s.Process {
		fmt.Fprintf(&b, " %q=%d:%q:%d:%v", a.Key, a.Type, a.Str, a.Int, a.Float)
	}
	return b.String()
}

// ToJSON converts the spans of one trace, processes numbered p1, p2… in
// order of first appearance.
func ToJSON(spans []model.Span) *Trace {
	t := &Trace{Spans: make([]Span, 0, len(spans)), Processes: map[string]Process{}}
	if len(spans) > 0 {
		t.TraceID = TraceIDString(spans[0].TraceID)
	}
	pids := map[string]string{}
	for i := range spans {
		s := &spans[i]
		key := processKey(s)
		pid, ok := pids[key]
		if !ok {
			pid = fmt.Sprintf("p%d", len(pids)+1)
			pids[key] = pid
			t.Processes[pid] = processOf(s)
		}
		js := Span{
			TraceID: TraceIDString(s.TraceID), SpanID: s.SpanID.String(), Flags: s.Flags,
			OperationName: s.Name, References: references(s),
			StartTime: us(s.StartTime), Duration: us(s.Duration),
			Tags: spanTags(s), Logs: make([]Log, 0, len(s.Events)), ProcessID: pid, Warnings: s.Warnings,
		}
		for _, e := range s.Events {
			fields := make([]KeyValue, 0, len(e.Attributes)+1)
			if e.Name != "" {
				fields = append(fields, str("event", e.Name))
			}
			fields = append(fields, keyValues(e.Attributes)...)
			js.Logs = append(js.Logs, Log{Timestamp: us(e.Time), Fields: fields})
		}
		t.Spans = append(t.Spans, js)
	}
	return t
}

// references lists the span's references, its parent first (CHILD_OF) even
// when only ParentSpanID carries it.
func references(s *model.Span) []Reference {
	out := make([]Reference, 0, len(s.References)+1)
	if !s.ParentSpanID.IsZero() && !slices.ContainsFunc(s.References, func(r model.SpanRef) bool {
		return r.Type == model.RefChildOf && r.SpanID == s.ParentSpanID
	}) {
		out = append(out, Reference{RefType: "CHILD_OF", TraceID: TraceIDString(s.TraceID), SpanID: s.ParentSpanID.String()})
	}
	for _, r := range s.References {
		typ := "CHILD_OF"
		if r.Type == model.RefFollowsFrom {
			typ = "FOLLOWS_FROM"
		}
		out = append(out, Reference{RefType: typ, TraceID: TraceIDString(r.TraceID), SpanID: r.SpanID.String()})
	}
	return out
}
