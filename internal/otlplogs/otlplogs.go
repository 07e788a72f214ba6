// Package otlplogs converts between Vigil's log records and OTLP logs
// (ExportLogsServiceRequest), the encoding of log batches in Vigil's queue
// and of the OTLP/HTTP logs receiver. The mapping is documented in
// docs/format/queue.md.
package otlplogs

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilhq/vigil/internal/model"
)

// Attribute keys with a fixed meaning in Vigil's log batches, besides the
// resource's model.AttrServiceName, AttrHostName, AttrEnv and AttrGrade.
const (
	AttrSource    = "vigil.source"
	AttrID        = "vigil.id"
	AttrTruncated = "vigil.truncated"
	AttrTraceID   = "vigil.trace_id" // a trace id that is not 8 or 16 bytes of hex
	AttrSpanID    = "vigil.span_id"
)

type resourceKey struct {
	service, host, env, source string
	grade                      int
}

// ToLogs builds OTLP logs from records, one ResourceLogs per distinct
// (service, host, env, grade, source).
func ToLogs(recs []model.LogRecord) plog.Logs {
	ld := plog.NewLogs()
	byRes := map[resourceKey]plog.LogRecordSlice{}
	for i := range recs {
		r := &recs[i]
		k := resourceKey{r.Service, r.Host, r.Env, r.Source, r.Grade}
		lrs, ok := byRes[k]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			attrs := rl.Resource().Attributes()
			putNonEmpty(attrs, model.AttrServiceName, r.Service)
			putNonEmpty(attrs, model.AttrHostName, r.Host)
			putNonEmpty(attrs, model.AttrEnv, r.Env)
			putNonEmpty(attrs, AttrSource, r.Source)
			if r.Grade > 0 {
				attrs.PutInt(model.AttrGrade, int64(r.Grade))
			}
			lrs = rl.ScopeLogs().AppendEmpty().LogRecords()
			byRes[k] = lrs
		}
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(r.Timestamp))
		lr.SetObservedTimestamp(pcommon.Timestamp(r.ObservedTimestamp))
		if r.Level != "" {
			lr.SetSeverityText(r.Level)
			lr.SetSeverityNumber(SeverityNumber(r.Level))
		}
		lr.Body().SetStr(r.Message)
		attrs := lr.Attributes()
		attrs.EnsureCapacity(len(r.Attributes) + 2)
		if !r.ID.IsZero() {
			attrs.PutEmptyBytes(AttrID).FromRaw(r.ID[:])
		}
		if r.Truncated {
			attrs.PutBool(AttrTruncated, true)
		}
		if r.TraceID != "" {
			if id, ok := parseTraceID(r.TraceID); ok {
				lr.SetTraceID(id)
			} else {
				attrs.PutStr(AttrTraceID, r.TraceID)
			}
		}
		if r.SpanID != "" {
			if id, ok := parseSpanID(r.SpanID); ok {
				lr.SetSpanID(id)
			} else {
				attrs.PutStr(AttrSpanID, r.SpanID)
			}
		}
		for _, a := range r.Attributes {
			attrs.PutStr(a.Key, a.Value)
		}
	}
	return ld
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// FromLogs appends the records of ld to dst. Resource attributes other than
// the ones with a fixed meaning become record attributes.
func FromLogs(dst []model.LogRecord, ld plog.Logs) []model.LogRecord {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var base model.LogRecord
		var extra []model.Attr
		rl.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
			switch k {
			case model.AttrServiceName:
				base.Service = v.AsString()
			case model.AttrHostName:
				base.Host = v.AsString()
			case model.AttrEnv, model.AttrEnvLegacy:
				base.Env = v.AsString()
			case AttrSource:
				base.Source = v.AsString()
			case model.AttrGrade:
				base.Grade = parseGrade(v)
			default:
				extra = append(extra, model.Attr{Key: k, Value: v.AsString()})
			}
			return true
		})
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				dst = append(dst, base)
				fromLogRecord(&dst[len(dst)-1], lrs.At(k), extra)
			}
		}
	}
	return dst
}

func fromLogRecord(r *model.LogRecord, lr plog.LogRecord, extra []model.Attr) {
	r.Timestamp = int64(lr.Timestamp())
	r.ObservedTimestamp = int64(lr.ObservedTimestamp())
	if r.Timestamp == 0 {
		r.Timestamp = r.ObservedTimestamp
	}
	r.Level = NormalizeLevel(lr.SeverityText())
	if r.Level == "" {
		r.Level = levelFromNumber(lr.SeverityNumber())
	}
	r.Message = lr.Body().AsString()
	if id := lr.TraceID(); !id.IsEmpty() {
		r.TraceID = hex.EncodeToString(id[:])
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		r.SpanID = hex.EncodeToString(id[:])
	}
	attrs := lr.Attributes()
	if n := attrs.Len() + len(extra); n > 0 {
		r.Attributes = make([]model.Attr, 0, n)
	}
	r.Attributes = append(r.Attributes, extra...)
	attrs.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case AttrID:
			if v.Type() == pcommon.ValueTypeBytes && v.Bytes().Len() == len(r.ID) {
				copy(r.ID[:], v.Bytes().AsRaw())
			}
		case AttrTruncated:
			r.Truncated = v.Bool()
		case AttrTraceID:
			r.TraceID = v.AsString()
		case AttrSpanID:
			r.SpanID = v.AsString()
		default:
			r.Attributes = append(r.Attributes, model.Attr{Key: k, Value: v.AsString()})
		}
		return true
	})
	if len(r.Attributes) == 0 {
		r.Attributes = nil
	}
}

func parseGrade(v pcommon.Value) int {
	var g int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		g = v.Int()
	default:
		g, _ = strconv.ParseInt(v.AsString(), 10, 64)
	}
	if g < 1 || g > 4 {
		return 0
	}
	return int(g)
}

func parseTraceID(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	switch len(s) {
	case 32:
		_, err := hex.Decode(id[:], []byte(s))
		return id, err == nil && strings.ToLower(s) == s
	case 16: // a 64-bit id, as Jaeger and Zipkin may send
		_, err := hex.Decode(id[8:], []byte(s))
		return id, err == nil && strings.ToLower(s) == s
	}
	return id, false
}

func parseSpanID(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	if len(s) != 16 || strings.ToLower(s) != s {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err == nil
}

// NormalizeLevel maps level spellings to Vigil's vocabulary: trace, debug,
// info, warn, error, fatal; other values are lower-cased and kept.
func NormalizeLevel(s string) string {
	if s == "" {
		return ""
	}
	l := strings.ToLower(s)
	switch l {
	case "warning":
		return "warn"
	case "err", "eror":
		return "error"
	case "information", "notice":
		return "info"
	case "critical", "crit", "panic", "emerg", "emergency", "alert":
		return "fatal"
	case "dbug", "dbg":
		return "debug"
	case "trce":
		return "trace"
	}
	return l
}

// SeverityNumber returns the OTLP severity number of a normalized level.
func SeverityNumber(level string) plog.SeverityNumber {
	switch NormalizeLevel(level) {
	case "trace":
		return plog.SeverityNumberTrace
	case "debug":
		return plog.SeverityNumberDebug
	case "info":
		return plog.SeverityNumberInfo
	case "warn":
		return plog.SeverityNumberWarn
	case "error":
		return plog.SeverityNumberError
	case "fatal":
		return plog.SeverityNumberFatal
	}
	return plog.SeverityNumberUnspecified
}

func levelFromNumber(n plog.SeverityNumber) string {
	switch {
	case n == plog.SeverityNumberUnspecified:
		return ""
	case n < plog.SeverityNumberDebug:
		return "trace"
	case n < plog.SeverityNumberInfo:
		return "debug"
	case n < plog.SeverityNumberWarn:
		return "info"
	case n < plog.SeverityNumberError:
		return "warn"
	case n < plog.SeverityNumberFatal:
		return "error"
	}
	return "fatal"
}

var (
	protoMarshaler   plog.ProtoMarshaler
	protoUnmarshaler plog.ProtoUnmarshaler
	jsonUnmarshaler  plog.JSONUnmarshaler
)

// Marshal encodes records as an OTLP ExportLogsServiceRequest in protobuf.
func Marshal(recs []model.LogRecord) ([]byte, error) {
	b, err := protoMarshaler.MarshalLogs(ToLogs(recs))
	if err != nil {
		return nil, fmt.Errorf("cannot encode %d log records as OTLP: %w", len(recs), err)
	}
	return b, nil
}

// Unmarshal decodes an OTLP ExportLogsServiceRequest in protobuf and appends
// its records to dst.
func Unmarshal(dst []model.LogRecord, data []byte) ([]model.LogRecord, error) {
	ld, err := protoUnmarshaler.UnmarshalLogs(data)
	if err != nil {
		return dst, fmt.Errorf("cannot decode OTLP logs protobuf: %w", err)
	}
	return FromLogs(dst, ld), nil
}

// UnmarshalJSON decodes an OTLP ExportLogsServiceRequest in OTLP/JSON and
// appends its records to dst.
func UnmarshalJSON(dst []model.LogRecord, data []byte) ([]model.LogRecord, error) {
	ld, err := jsonUnmarshaler.UnmarshalLogs(data)
	if err != nil {
		return dst, fmt.Errorf("cannot decode OTLP logs JSON: %w", err)
	}
	return FromLogs(dst, ld), nil
}
