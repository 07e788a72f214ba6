package esspanstore

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/vigilhq/vigil/internal/model"
)

// spanDoc is a document of jaeger-span-*: Jaeger's dbmodel.Span, plus
// Vigil's extras under "vigil".
type spanDoc struct {
	TraceID         string     `json:"traceID"`
	SpanID          string     `json:"spanID"`
	ParentSpanID    string     `json:"parentSpanID,omitempty"`
	Flags           uint32     `json:"flags,omitempty"`
	OperationName   string     `json:"operationName"`
	References      []refDoc   `json:"references"`
	StartTime       int64      `json:"startTime"`       // µs
	StartTimeMillis int64      `json:"startTimeMillis"` // ms
	Duration        int64      `json:"duration"`        // µs
	Tags            []kvDoc    `json:"tags"`
	Logs            []logDoc   `json:"logs"`
	Process         processDoc `json:"process"`
	Vigil           *extraDoc  `json:"vigil,omitempty"`
}

type refDoc struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// kvDoc is a tag; the value is a string whatever the type, as Jaeger
// writes it (binary in hex).
type kvDoc struct {
	Key   string   `json:"key"`
	Type  string   `json:"type"`
	Value tagValue `json:"value"`
}

// tagValue is written as a JSON string; it is read from a string, or from
// the JSON number or boolean some Jaeger versions write for typed tags.
type tagValue string

func (v *tagValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		*v = tagValue(s)
		return err
	}
	if string(b) == "null" {
		*v = ""
		return nil
	}
	*v = tagValue(b)
	return nil
}

type logDoc struct {
	Timestamp int64   `json:"timestamp"` // µs
	Fields    []kvDoc `json:"fields"`
}

type processDoc struct {
	ServiceName string  `json:"serviceName"`
	Tags        []kvDoc `json:"tags"`
}

// extraDoc is what Jaeger's layout cannot carry exactly. Tags, process tags
// and references that Vigil derives for Jaeger's readers (span.kind, error,
// otel.status_*, host.name…) follow the span's own, so NTags, NPTags and
// ParentRef tell them apart on the way back.
type extraDoc struct {
	Start         int64  `json:"start"`               // ns
	Duration      int64  `json:"dur"`                 // ns
	Kind          uint8  `json:"kind,omitempty"`      //
	Status        uint8  `json:"status,omitempty"`    //
	StatusMessage string `json:"statusMsg,omitempty"` //
	Host          string `json:"host,omitempty"`
	Env           string `json:"env,omitempty"`
	Grade         int    `json:"grade,omitempty"`
	// ParentService is the service of the span's parent, when it was known
	// as the span was written (indexed: dependencies aggregate on it).
	ParentService string     `json:"parentService,omitempty"`
	NTags         int        `json:"nTags"`
	NPTags        int        `json:"nPTags"`
	ParentRef     bool       `json:"parentRef,omitempty"` // references[0] is derived from ParentSpanID
	Events        []eventDoc `json:"events,omitempty"`
	Warnings      []string   `json:"warnings,omitempty"`
}

type eventDoc struct {
	Time int64  `json:"t"` // ns
	Name string `json:"name,omitempty"`
}

// serviceDoc is a document of jaeger-service-*.
type serviceDoc struct {
	ServiceName   string `json:"serviceName"`
	OperationName string `json:"operationName"`
}

// serviceDocID is Jaeger's id of a service document: FNV-1a 64 of the
// service name then the operation name, in hex.
func serviceDocID(service, operation string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(service)) // a hash's Write never fails
	_, _ = h.Write([]byte(operation))
	return strconv.FormatUint(h.Sum64(), 16)
}

// traceIDString is Jaeger's rendering: 16 hex digits for a 64-bit id (high
// half zero), 32 otherwise; leading zeros are kept, as current Jaeger does.
func traceIDString(id model.TraceID) string {
	if binary.BigEndian.Uint64(id[:8]) == 0 {
		return hex.EncodeToString(id[8:])
	}
	return id.String()
}

func parseTraceID(s string) (model.TraceID, error) {
	var id model.TraceID
	if len(s) > 32 || len(s) == 0 {
		return id, fmt.Errorf("trace id %q: want 1 to 32 hex digits", s)
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, fmt.Errorf("trace id %q: %w", s, err)
	}
	copy(id[16-len(b):], b)
	return id, nil
}

func parseSpanID(s string) (model.SpanID, error) {
	var id model.SpanID
	if len(s) > 16 || len(s) == 0 {
		return id, fmt.Errorf("span id %q: want 1 to 16 hex digits", s)
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, fmt.Errorf("span id %q: %w", s, err)
	}
	copy(id[8-len(b):], b)
	return id, nil
}

var typeNames = [...]string{model.AttrString: "string", model.AttrBool: "bool", model.AttrInt64: "int64", model.AttrFloat64: "float64", model.AttrBinary: "binary"}

func toKV(a model.TypedAttr) kvDoc {
	kv := kvDoc{Key: a.Key, Type: "string", Value: tagValue(a.ValueString())}
	if int(a.Type) < len(typeNames) {
		kv.Type = typeNames[a.Type]
	}
	return kv
}

func fromKV(kv kvDoc) model.TypedAttr {
	val := string(kv.Value)
	a := model.TypedAttr{Key: kv.Key, Type: model.AttrString, Str: val}
	switch kv.Type {
	case "bool":
		if b, err := strconv.ParseBool(val); err == nil {
			a = model.TypedAttr{Key: kv.Key, Type: model.AttrBool}
			if b {
				a.Int = 1
			}
		}
	case "int64":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			a = model.TypedAttr{Key: kv.Key, Type: model.AttrInt64, Int: n}
		}
	case "float64":
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			a = model.TypedAttr{Key: kv.Key, Type: model.AttrFloat64, Float: f}
		}
	case "binary":
		if b, err := hex.DecodeString(val); err == nil {
			a = model.TypedAttr{Key: kv.Key, Type: model.AttrBinary, Str: string(b)}
		}
	}
	return a
}

func strKV(k, v string) kvDoc { return kvDoc{Key: k, Type: "string", Value: tagValue(v)} }

var refTypes = [...]string{model.RefChildOf: "CHILD_OF", model.RefFollowsFrom: "FOLLOWS_FROM"}

// toDoc converts a span the way Vigil's Jaeger API shows it: span.kind,
// otel.status_code, otel.status_description and error=true as span tags,
// host.name, deployment.environment and vigil.grade as process tags, an
// event's name as the log field "event".
func toDoc(s *model.Span) spanDoc {
	d := spanDoc{
		TraceID: traceIDString(s.TraceID), SpanID: s.SpanID.String(), Flags: s.Flags,
		OperationName: s.Name, StartTime: s.StartTime / 1000, StartTimeMillis: s.StartTime / 1e6, Duration: s.Duration / 1000,
		References: make([]refDoc, 0, len(s.References)+1),
		Tags:       make([]kvDoc, 0, len(s.Attributes)+3),
		Logs:       make([]logDoc, 0, len(s.Events)),
		Process:    processDoc{ServiceName: s.Service, Tags: make([]kvDoc, 0, len(s.Process)+3)},
		Vigil: &extraDoc{
			Start: s.StartTime, Duration: s.Duration, Kind: uint8(s.Kind), Status: s.StatusCode, StatusMessage: s.StatusMessage,
			Host: s.Host, Env: s.Env, Grade: s.Grade, NTags: len(s.Attributes), NPTags: len(s.Process), Warnings: s.Warnings,
		},
	}
	if !s.ParentSpanID.IsZero() {
		d.ParentSpanID = s.ParentSpanID.String()
		if !slices.ContainsFunc(s.References, func(r model.SpanRef) bool { return r.Type == model.RefChildOf && r.SpanID == s.ParentSpanID }) {
			d.References = append(d.References, refDoc{"CHILD_OF", d.TraceID, d.ParentSpanID})
			d.Vigil.ParentRef = true
		}
	}
	for _, r := range s.References {
		typ := "CHILD_OF"
		if int(r.Type) < len(refTypes) {
			typ = refTypes[r.Type]
		}
		d.References = append(d.References, refDoc{typ, traceIDString(r.TraceID), r.SpanID.String()})
	}
	for _, a := range s.Attributes {
		d.Tags = append(d.Tags, toKV(a))
	}
	if k := s.Kind.Name(); k != "" {
		d.Tags = append(d.Tags, strKV("span.kind", k))
	}
	switch s.StatusCode {
	case 1:
		d.Tags = append(d.Tags, strKV("otel.status_code", "OK"))
	case 2:
		d.Tags = append(d.Tags, strKV("otel.status_code", "ERROR"))
		if !slices.ContainsFunc(s.Attributes, func(a model.TypedAttr) bool { return a.Key == "error" }) {
			d.Tags = append(d.Tags, kvDoc{Key: "error", Type: "bool", Value: "true"})
		}
	}
	if s.StatusMessage != "" {
		d.Tags = append(d.Tags, strKV("otel.status_description", s.StatusMessage))
	}
	for _, a := range s.Process {
		d.Process.Tags = append(d.Process.Tags, toKV(a))
	}
	has := func(k string) bool {
		return slices.ContainsFunc(s.Process, func(a model.TypedAttr) bool { return a.Key == k })
	}
	if s.Host != "" && !has("host.name") {
		d.Process.Tags = append(d.Process.Tags, strKV("host.name", s.Host))
	}
	if s.Env != "" && !has("deployment.environment") {
		d.Process.Tags = append(d.Process.Tags, strKV("deployment.environment", s.Env))
	}
	if s.Grade != 0 && !has("vigil.grade") {
		d.Process.Tags = append(d.Process.Tags, kvDoc{Key: "vigil.grade", Type: "int64", Value: tagValue(strconv.Itoa(s.Grade))})
	}
	for _, e := range s.Events {
		l := logDoc{Timestamp: e.Time / 1000, Fields: make([]kvDoc, 0, len(e.Attributes)+1)}
		if e.Name != "" {
			l.Fields = append(l.Fields, strKV("event", e.Name))
		}
		for _, a := range e.Attributes {
			l.Fields = append(l.Fields, toKV(a))
		}
		d.Logs = append(d.Logs, l)
		d.Vigil.Events = append(d.Vigil.Events, eventDoc{Time: e.Time, Name: e.Name})
	}
	return d
}

// fromDoc converts a document back. A document without "vigil" (written by
// a Jaeger collector) is read as Jaeger sees it: span.kind becomes the kind,
// every other tag an attribute, µs times.
func fromDoc(d *spanDoc) (model.Span, error) {
	var s model.Span
	var err error
	if s.TraceID, err = parseTraceID(d.TraceID); err != nil {
		return s, err
	}
	if s.SpanID, err = parseSpanID(d.SpanID); err != nil {
		return s, err
	}
	if d.ParentSpanID != "" {
		if s.ParentSpanID, err = parseSpanID(d.ParentSpanID); err != nil {
			return s, err
		}
	}
	s.Name, s.Flags, s.Service = d.OperationName, d.Flags, d.Process.ServiceName
	x := d.Vigil
	refs := d.References
	if x != nil && x.ParentRef && len(refs) > 0 {
		refs = refs[1:]
	}
	for _, r := range refs {
		ref := model.SpanRef{Type: model.RefChildOf}
		if r.RefType == "FOLLOWS_FROM" {
			ref.Type = model.RefFollowsFrom
		}
		if ref.TraceID, err = parseTraceID(r.TraceID); err != nil {
			return s, err
		}
		if ref.SpanID, err = parseSpanID(r.SpanID); err != nil {
			return s, err
		}
		s.References = append(s.References, ref)
	}
	if x == nil {
		s.StartTime, s.Duration = d.StartTime*1000, d.Duration*1000
		for _, kv := range d.Tags {
			if kv.Key == "span.kind" {
				s.Kind = model.SpanKindFromName(string(kv.Value))
				continue
			}
			s.Attributes = append(s.Attributes, fromKV(kv))
		}
		for _, kv := range d.Process.Tags {
			s.Process = append(s.Process, fromKV(kv))
		}
		if s.ParentSpanID.IsZero() {
			for _, r := range s.References {
				if r.Type == model.RefChildOf && r.TraceID == s.TraceID {
					s.ParentSpanID = r.SpanID
					break
				}
			}
		}
		for _, l := range d.Logs {
			e := model.SpanEvent{Time: l.Timestamp * 1000}
			for _, kv := range l.Fields {
				if kv.Key == "event" && kv.Type == "string" && e.Name == "" {
					e.Name = string(kv.Value)
					continue
				}
				e.Attributes = append(e.Attributes, fromKV(kv))
			}
			s.Events = append(s.Events, e)
		}
		return s, nil
	}
	s.StartTime, s.Duration = x.Start, x.Duration
	s.Kind, s.StatusCode, s.StatusMessage = model.SpanKind(x.Kind), x.Status, x.StatusMessage
	s.Host, s.Env, s.Grade, s.Warnings = x.Host, x.Env, x.Grade, x.Warnings
	for _, kv := range d.Tags[:min(x.NTags, len(d.Tags))] {
		s.Attributes = append(s.Attributes, fromKV(kv))
	}
	for _, kv := range d.Process.Tags[:min(x.NPTags, len(d.Process.Tags))] {
		s.Process = append(s.Process, fromKV(kv))
	}
	for i, l := range d.Logs {
		e := model.SpanEvent{Time: l.Timestamp * 1000}
		fields := l.Fields
		if i < len(x.Events) {
			e.Time, e.Name = x.Events[i].Time, x.Events[i].Name
			if e.Name != "" && len(fields) > 0 {
				fields = fields[1:]
			}
		}
		for _, kv := range fields {
			e.Attributes = append(e.Attributes, fromKV(kv))
		}
		s.Events = append(s.Events, e)
	}
	return s, nil
}
