// Package logsjson decodes Vigil's JSON logs intake format: NDJSON, one
// record per line, or a JSON array of records. A record is
//
//	{"timestamp": "2024-05-01T12:00:00Z" | 1714564800000000000,
//	 "service": "api", "level": "error", "message": "...", "env": "prod",
//	 "host": "web-1", "grade": 1, "trace_id": "<32 hex>", "span_id": "<16 hex>",
//	 "attributes": {"key": "value", ...}}
//
// Only message is required. The format is documented in docs/format/logs-api.md.
package logsjson

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
)

// DefaultService is the service of records that name none.
const DefaultService = "unknown_service"

// LineError is the problem with one record of a request.
type LineError struct {
	// Line is the 1-based line of an NDJSON body, or the 1-based item of a
	// JSON array.
	Line  int
	Field string // empty when the record as a whole is bad
	Msg   string
	array bool
}

func (e *LineError) Error() string {
	where := "line"
	if e.array {
		where = "item"
	}
	if e.Field == "" {
		return fmt.Sprintf("%s %d: %s", where, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s %d: field %q: %s", where, e.Line, e.Field, e.Msg)
}

// Decoder decodes request bodies. It is not safe for concurrent use; keep
// one per goroutine or in a sync.Pool.
type Decoder struct {
	p fastjson.Parser
	// MaxErrors bounds the errors collected per body; 0 means 20.
	MaxErrors int
}

// Decode appends the records of body to dst. now is the arrival time, set
// as every record's ObservedTimestamp; Timestamp stays 0 when a record has
// none, so the caller can tell explicit times from defaults. It returns every bad record's
// error (up to MaxErrors) together with the total number of bad records;
// callers reject the whole body when bad > 0.
func (d *Decoder) Decode(dst []model.LogRecord, body []byte, now int64) (recs []model.LogRecord, errs []*LineError, bad int) {
	maxErrs := d.MaxErrors
	if maxErrs <= 0 {
		maxErrs = 20
	}
	fail := func(e *LineError) {
		bad++
		if len(errs) < maxErrs {
			errs = append(errs, e)
		}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if !utf8.Valid(trimmed) {
			fail(&LineError{Line: 1, Msg: "body is not valid UTF-8", array: true})
			return dst, errs, bad
		}
		v, err := d.p.ParseBytes(trimmed)
		if err != nil {
			fail(&LineError{Line: 1, Msg: "invalid JSON array: " + err.Error(), array: true})
			return dst, errs, bad
		}
		items, _ := v.Array()
		for i, item := range items {
			var r model.LogRecord
			if e := decodeRecord(&r, item, now); e != nil {
				e.Line, e.array = i+1, true
				fail(e)
				continue
			}
			dst = append(dst, r)
		}
		return dst, errs, bad
	}

	line := 0
	for len(body) > 0 {
		var chunk []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			chunk, body = body[:i], body[i+1:]
		} else {
			chunk, body = body, nil
		}
		line++
		chunk = bytes.TrimSpace(chunk)
		if len(chunk) == 0 {
			continue
		}
		if !utf8.Valid(chunk) {
			fail(&LineError{Line: line, Msg: "not valid UTF-8"})
			continue
		}
		v, err := d.p.ParseBytes(chunk)
		if err != nil {
			fail(&LineError{Line: line, Msg: "invalid JSON: " + err.Error()})
			continue
		}
		var r model.LogRecord
		if e := decodeRecord(&r, v, now); e != nil {
			e.Line = line
			fail(e)
			continue
		}
		dst = append(dst, r)
	}
	return dst, errs, bad
}

func decodeRecord(r *model.LogRecord, v *fastjson.Value, now int64) *LineError {
	obj, err := v.Object()
	if err != nil {
		return &LineError{Msg: "want a JSON object, got " + v.Type().String()}
	}
	var e *LineError
	hasMessage := false
	obj.Visit(func(key []byte, f *fastjson.Value) {
		if e != nil {
			return
		}
		k := string(key)
		switch k {
		case "message":
			r.Message, e = str(k, f)
			hasMessage = e == nil
		case "timestamp":
			r.Timestamp, e = timestamp(k, f)
		case "service":
			r.Service, e = str(k, f)
		case "level":
			r.Level, e = str(k, f)
			r.Level = otlplogs.NormalizeLevel(r.Level)
		case "env":
			r.Env, e = str(k, f)
		case "host":
			r.Host, e = str(k, f)
		case "grade":
			r.Grade, e = grade(k, f)
		case "trace_id":
			r.TraceID, e = hexID(k, f, 32, 16)
		case "span_id":
			r.SpanID, e = hexID(k, f, 16)
		case "attributes":
			e = attributes(r, k, f)
		default:
			if f.Type() == fastjson.TypeObject || f.Type() == fastjson.TypeArray {
				r.Attributes = append(r.Attributes, model.Attr{Key: k, Value: string(f.MarshalTo(nil))})
			} else {
				r.Attributes = append(r.Attributes, model.Attr{Key: k, Value: scalar(f)})
			}
		}
	})
	if e != nil {
		return e
	}
	if !hasMessage {
		return &LineError{Field: "message", Msg: "required field is missing"}
	}
	if r.Service == "" {
		r.Service = DefaultService
	}
	r.ObservedTimestamp = now
	r.Source = "http"
	return nil
}

func str(field string, v *fastjson.Value) (string, *LineError) {
	b, err := v.StringBytes()
	if err != nil {
		return "", &LineError{Field: field, Msg: "want a string, got " + v.Type().String()}
	}
	return string(b), nil
}

func timestamp(field string, v *fastjson.Value) (int64, *LineError) {
	switch v.Type() {
	case fastjson.TypeNumber:
		n, err := v.Int64()
		if err != nil || n < 0 {
			return 0, &LineError{Field: field, Msg: fmt.Sprintf("cannot parse %s as Unix nanoseconds", v)}
		}
		return n, nil
	case fastjson.TypeString:
		s := string(v.GetStringBytes())
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			return n, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, &LineError{Field: field, Msg: fmt.Sprintf("cannot parse %q as RFC 3339 or Unix nanoseconds", s)}
		}
		return t.UnixNano(), nil
	}
	return 0, &LineError{Field: field, Msg: "want an RFC 3339 string or Unix nanoseconds, got " + v.Type().String()}
}

func grade(field string, v *fastjson.Value) (int, *LineError) {
	var g int
	var err error
	switch v.Type() {
	case fastjson.TypeNumber:
		g, err = v.Int()
	case fastjson.TypeString:
		g, err = strconv.Atoi(string(v.GetStringBytes()))
	default:
		return 0, &LineError{Field: field, Msg: "want an integer from 1 to 4, got " + v.Type().String()}
	}
	if err != nil || g < 1 || g > 4 {
		return 0, &LineError{Field: field, Msg: fmt.Sprintf("want an integer from 1 to 4, got %s", v)}
	}
	return g, nil
}

func hexID(field string, v *fastjson.Value, lengths ...int) (string, *LineError) {
	s, e := str(field, v)
	if e != nil || s == "" {
		return "", e
	}
	okLen := false
	for _, n := range lengths {
		okLen = okLen || len(s) == n
	}
	if _, err := hex.DecodeString(s); err != nil || !okLen {
		want := make([]string, len(lengths))
		for i, n := range lengths {
			want[i] = strconv.Itoa(n)
		}
		return "", &LineError{Field: field, Msg: fmt.Sprintf("want %s hex digits, got %q", strings.Join(want, " or "), s)}
	}
	return strings.ToLower(s), nil
}

func attributes(r *model.LogRecord, field string, v *fastjson.Value) *LineError {
	obj, err := v.Object()
	if err != nil {
		return &LineError{Field: field, Msg: "want an object of key/value pairs, got " + v.Type().String()}
	}
	obj.Visit(func(key []byte, f *fastjson.Value) {
		val := scalar(f)
		if f.Type() == fastjson.TypeObject || f.Type() == fastjson.TypeArray {
			val = string(f.MarshalTo(nil))
		}
		r.Attributes = append(r.Attributes, model.Attr{Key: string(key), Value: val})
	})
	return nil
}

func scalar(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes())
	case fastjson.TypeNull:
		return ""
	}
	return string(v.MarshalTo(nil))
}
