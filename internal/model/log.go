// Package model holds the records that travel through Vigil's pipeline and the
// label vocabulary shared by the collector, the ingester, the stores and query.
package model

import (
	"encoding/hex"
	"strconv"
)

// RecordID is a record's deterministic identity, assigned once at the
// collector (DESIGN §2). Stores write with it, so a redelivered record is
// recognised as a duplicate instead of being stored twice.
type RecordID [16]byte

// String returns the id as 32 lower-case hex digits.
func (id RecordID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether the id was never assigned.
func (id RecordID) IsZero() bool { return id == RecordID{} }

// Attr is one free-form key/value attribute of a record.
type Attr struct {
	Key   string
	Value string
}

// LogRecord is one log line inside Vigil.
type LogRecord struct {
	ID RecordID
	// Timestamp is the time of the event in Unix nanoseconds.
	Timestamp int64
	// ObservedTimestamp is when the collector received the line, Unix ns.
	ObservedTimestamp int64

	Service string
	Level   string
	Env     string
	Host    string
	// Grade is the service grade, 1 (critical) to 4 (low); 0 when unknown.
	Grade int
	// Source says where the line entered Vigil: "http", "otlp" or "file".
	Source string

	Message string
	TraceID string // lower-case hex, empty when absent
	SpanID  string // lower-case hex, empty when absent

	Attributes []Attr
	// Truncated is set when the collector cut the line at its maximum length.
	Truncated bool
}

// Attr returns the value of attribute key and whether it is present.
func (r *LogRecord) Attr(key string) (string, bool) {
	for _, a := range r.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// Stream label names. Every stored log line belongs to exactly one stream,
// the combination of these labels; they are what LogQL stream selectors see.
const (
	LabelService = "service"
	LabelLevel   = "level"
	LabelEnv     = "env"
	LabelHost    = "host"
	LabelGrade   = "grade"
	LabelSource  = "source"
)

// StreamLabelNames lists the stream labels in their canonical order.
var StreamLabelNames = []string{LabelEnv, LabelGrade, LabelHost, LabelLevel, LabelService, LabelSource}

// StreamLabels returns r's stream labels in canonical order, omitting empty
// values.
func (r *LogRecord) StreamLabels() Labels {
	ls := make(Labels, 0, len(StreamLabelNames))
	add := func(name, value string) {
		if value != "" {
			ls = append(ls, Label{Name: name, Value: value})
		}
	}
	add(LabelEnv, r.Env)
	if r.Grade > 0 {
		add(LabelGrade, strconv.Itoa(r.Grade))
	}
	add(LabelHost, r.Host)
	add(LabelLevel, r.Level)
	add(LabelService, r.Service)
	add(LabelSource, r.Source)
	return ls
}
