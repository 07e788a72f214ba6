package model

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// EncodeJSON returns d as json.Marshal encodes it (see AppendJSON),
// in a slice of its own.
func (d *Dump) EncodeJSON() ([]byte, error) {
	bp := jsonBuffers.Get().(*[]byte)
	b, err := d.AppendJSON((*bp)[:0])
	if err != nil {
		return nil, err
	}
	out := slices.Clone(b)
	if cap(b) <= maxPooledJSON {
		*bp = b
		jsonBuffers.Put(bp)
	}
	return out, nil
}

// jsonBuffers are EncodeJSON's buffers, kept up to maxPooledJSON (a Go
// panic's dump is 20 to 30 KB; an event is at most 1 MiB).
var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledJSON = 1 << 20

// AppendJSON appends d as json.Marshal encodes it, byte for byte, without
// reflection: the dumps queue and the dump store encode every event, and
// an event carries every goroutine's frames. An error is json.Marshal's
// (only Contexts or Extra not being valid JSON fails).
func (d *Dump) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"event_id":`...)
	b = appendJSONString(b, d.EventID)
	b = append(b, `,"project":`...)
	b = appendJSONString(b, d.Project)
	b = append(b, `,"service":`...)
	b = appendJSONString(b, d.Service)
	if d.Grade != 0 {
		b = append(b, `,"grade":`...)
		b = strconv.AppendInt(b, int64(d.Grade), 10)
	}
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, d.Timestamp, 10)
	b = append(b, `,"received":`...)
	b = strconv.AppendInt(b, d.Received, 10)
	b = append(b, `,"level":`...)
	b = appendJSONString(b, d.Level)
	b = appendField(b, "platform", d.Platform)
	b = appendField(b, "message", d.Message)
	b = appendField(b, "logger", d.Logger)
	b = appendField(b, "release", d.Release)
	b = appendField(b, "dist", d.Dist)
	b = appendField(b, "environment", d.Environment)
	b = appendField(b, "server_name", d.ServerName)
	b = appendField(b, "transaction", d.Transaction)
	b = appendField(b, "trace_id", d.TraceID)
	b = appendField(b, "span_id", d.SpanID)
	b = appendList(b, "fingerprint", d.Fingerprint, func(f *string, b []byte) []byte { return appendJSONString(b, *f) })
	b = appendList(b, "exceptions", d.Exceptions, (*Exception).appendJSON)
	b = appendList(b, "threads", d.Threads, (*Thread).appendJSON)
	if r := d.Request; r != nil {
		b = append(b, `,"request":{`...)
		n := len(b)
		b = appendField(b, "method", r.Method)
		b = appendField(b, "url", r.URL)
		b = appendField(b, "query_string", r.Query)
		b = appendAttrs(b, "headers", r.Headers)
		if len(b) > n {
			b = append(b[:n], b[n+1:]...) // the first member's comma
		}
		b = append(b, '}')
	}
	b = appendAttrs(b, "tags", d.Tags)
	b = appendField(b, "sdk", d.SDK)
	b = appendAttrs(b, "modules", d.Modules)
	var err error
	if b, err = appendRaw(b, "contexts", d.Contexts); err != nil {
		return nil, err
	}
	if b, err = appendRaw(b, "extra", d.Extra); err != nil {
		return nil, err
	}
	b = appendField(b, "issue_id", d.IssueID)
	return append(b, '}'), nil
}

func (e *Exception) appendJSON(b []byte) []byte {
	b = append(b, '{')
	n := len(b)
	b = appendField(b, "type", e.Type)
	b = appendField(b, "value", e.Value)
	b = appendField(b, "module", e.Module)
	b = appendField(b, "mechanism", e.Mechanism)
	if e.Handled != nil {
		b = append(b, `,"handled":`...)
		b = strconv.AppendBool(b, *e.Handled)
	}
	b = appendField(b, "thread_id", e.ThreadID)
	b = appendFrames(b, e.Frames)
	if len(b) > n {
		b = append(b[:n], b[n+1:]...)
	}
	return append(b, '}')
}

func (t *Thread) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, t.ID)
	b = appendField(b, "name", t.Name)
	b = appendField(b, "state", t.State)
	if t.Crashed {
		b = append(b, `,"crashed":true`...)
	}
	if t.Current {
		b = append(b, `,"current":true`...)
	}
	b = appendFrames(b, t.Frames)
	return append(b, '}')
}

func appendFrames(b []byte, fs []Frame) []byte {
	return appendList(b, "frames", fs, func(f *Frame, b []byte) []byte {
		b = append(b, '{')
		n := len(b)
		b = appendField(b, "function", f.Function)
		b = appendField(b, "module", f.Module)
		b = appendField(b, "filename", f.Filename)
		b = appendField(b, "abs_path", f.AbsPath)
		if f.Line != 0 {
			b = append(b, `,"lineno":`...)
			b = strconv.AppendInt(b, int64(f.Line), 10)
		}
		if f.Column != 0 {
			b = append(b, `,"colno":`...)
			b = strconv.AppendInt(b, int64(f.Column), 10)
		}
		if f.InApp {
			b = append(b, `,"in_app":true`...)
		}
		if len(b) > n {
			b = append(b[:n], b[n+1:]...)
		}
		return append(b, '}')
	})
}

// appendList appends ,"name":[...] unless items is empty (omitempty).
func appendList[T any](b []byte, name string, items []T, item func(*T, []byte) []byte) []byte {
	if len(items) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = item(&items[i], b)
	}
	return append(b, ']')
}

// appendField appends ,"name":"value" unless value is empty (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

func appendAttrs(b []byte, name string, attrs []Attr) []byte {
	return appendList(b, name, attrs, func(a *Attr, b []byte) []byte {
		b = append(b, `{"Key":`...)
		b = appendJSONString(b, a.Key)
		b = append(b, `,"Value":`...)
		b = appendJSONString(b, a.Value)
		return append(b, '}')
	})
}

// appendRaw appends a json.RawMessage as json.Marshal does: compacted,
// with <, >, & and U+2028/U+2029 escaped.
func appendRaw(b []byte, name string, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return b, nil
	}
	v, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return append(b, v...), nil
}

// htmlSafe are the ASCII bytes json.Marshal writes as they are.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s quoted as json.Marshal quotes a string:
// HTML characters, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
