package sentry

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The event payload as SDKs write it. Sentry's ingestion is lenient about
// types (a release may be a number, a tag value a bool, interfaces come
// as {"values": [...]} or as a bare list), so fields that SDKs disagree
// on are decoded by the types below, which never fail on a well-formed
// JSON value of another type: what does not fit is dropped.

type event struct {
	EventID     lstr            `json:"event_id"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Level       lstr            `json:"level"`
	Platform    lstr            `json:"platform"`
	Logger      lstr            `json:"logger"`
	Release     lstr            `json:"release"`
	Dist        lstr            `json:"dist"`
	Environment lstr            `json:"environment"`
	ServerName  lstr            `json:"server_name"`
	Transaction lstr            `json:"transaction"`
	Message     json.RawMessage `json:"message"`  // a string, or a log entry
	LogEntry    json.RawMessage `json:"logentry"` // {"message", "formatted", "params"}
	Fingerprint lany[[]lstr]    `json:"fingerprint"`
	Tags        json.RawMessage `json:"tags"` // {"k": "v"} or [["k", "v"], ...]
	Contexts    json.RawMessage `json:"contexts"`
	Extra       json.RawMessage `json:"extra"`
	Exception   json.RawMessage `json:"exception"` // {"values": [...]} or [...]
	Threads     json.RawMessage `json:"threads"`   // likewise
	Request     lany[request]   `json:"request"`
	SDK         lany[sdkInfo]   `json:"sdk"`
	Modules     json.RawMessage `json:"modules"` // {"name": "version"}
}

type logEntry struct {
	Message   lstr `json:"message"`
	Formatted lstr `json:"formatted"`
}

type exception struct {
	Type       lstr            `json:"type"`
	Value      lstr            `json:"value"`
	Module     lstr            `json:"module"`
	ThreadID   lstr            `json:"thread_id"`
	Mechanism  lany[mechanism] `json:"mechanism"`
	Stacktrace lany[stack]     `json:"stacktrace"`
}

type mechanism struct {
	Type    lstr        `json:"type"`
	Handled lany[*bool] `json:"handled"`
}

type thread struct {
	ID         lstr        `json:"id"`
	Name       lstr        `json:"name"`
	State      lstr        `json:"state"`
	Crashed    lany[bool]  `json:"crashed"`
	Current    lany[bool]  `json:"current"`
	Stacktrace lany[stack] `json:"stacktrace"`
}

type stack struct {
	Frames lany[[]lany[frame]] `json:"frames"`
}

type frame struct {
	Function lstr       `json:"function"`
	Module   lstr       `json:"module"`
	Filename lstr       `json:"filename"`
	AbsPath  lstr       `json:"abs_path"`
	Line     lint       `json:"lineno"`
	Column   lint       `json:"colno"`
	InApp    lany[bool] `json:"in_app"`
}

type request struct {
	URL         lstr            `json:"url"`
	Method      lstr            `json:"method"`
	QueryString json.RawMessage `json:"query_string"` // "a=b" or {"a": "b"} or [["a", "b"]]
	Headers     json.RawMessage `json:"headers"`      // {"k": "v"} or [["k", "v"]]
}

type sdkInfo struct {
	Name    lstr `json:"name"`
	Version lstr `json:"version"`
}

type traceContext struct {
	Trace lany[struct {
		TraceID lstr `json:"trace_id"`
		SpanID  lstr `json:"span_id"`
	}] `json:"trace"`
}

// lstr is a string that also takes a number or a bool (as its JSON
// text); null and other values leave it empty.
type lstr string

func (s *lstr) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = lstr(v)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9') || b[0] == 't' || b[0] == 'f':
		*s = lstr(b)
	}
	return nil
}

// lint is an int that also takes a float or a numeric string.
type lint int

func (n *lint) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if f, err := strconv.ParseFloat(string(b), 64); err == nil && f >= -1<<31 && f < 1<<31 {
		*n = lint(f)
	}
	return nil
}

// lany decodes a T when the JSON value fits one and leaves the zero T
// otherwise (a string where an object was expected, …).
type lany[T any] struct{ V T }

func (a *lany[T]) UnmarshalJSON(b []byte) error {
	var v T
	if json.Unmarshal(b, &v) == nil {
		a.V = v
	}
	return nil
}

// values decodes an interface that is either {"values": [...]} or a bare
// list.
func values[T any](raw json.RawMessage) []T {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var list []lany[T]
	if raw[0] == '{' {
		var w struct {
			Values []lany[T] `json:"values"`
		}
		if json.Unmarshal(raw, &w) != nil {
			return nil
		}
		list = w.Values
	} else if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	out := make([]T, len(list))
	for i, v := range list {
		out[i] = v.V
	}
	return out
}

// pairs decodes {"k": v, ...} or [["k", v], ...] into key/value pairs,
// values as text (strings unquoted, other JSON as written). A JSON object
// keeps its order.
func pairs(raw json.RawMessage) [][2]string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var out [][2]string
	if raw[0] == '[' {
		var list []lany[[]json.RawMessage]
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
		for _, p := range list {
			if len(p.V) != 2 {
				continue
			}
			out = append(out, [2]string{text(p.V[0]), text(p.V[1])})
		}
		return out
	}
	if raw[0] != '{' {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	if _, err := d.Token(); err != nil {
		return nil
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return out
		}
		k, _ := t.(string)
		var v json.RawMessage
		if d.Decode(&v) != nil {
			return out
		}
		out = append(out, [2]string{k, text(v)})
	}
	return out
}

// text is a JSON value as text: a string unquoted, null empty, anything
// else as written.
func text(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}
