package sentry

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
)

// The event payload as SDKs write it, read in one pass. Sentry's
// ingestion is lenient about types (a release may be a number, a tag
// value a bool, interfaces come as {"values": [...]} or as a bare list),
// so fields that SDKs disagree on never fail on a well-formed JSON value
// of another type: what does not fit is dropped.
//
// The reader accepts exactly the JSON that encoding/json accepts (nesting
// up to 10000 levels, any byte but a control character in strings) and
// decodes as encoding/json would decode into the lenient field types it
// replaces: object keys match field names exactly or case-insensitively
// (Unicode folding), a repeated key decodes again over the first, a
// value of the wrong type leaves the field as it was, and null resets a
// field that holds a struct, a list or a bool.

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// eventFields are the fields of an event that a Dump is made of.
type eventFields struct {
	EventID, Level, Platform, Logger, Release, Dist, Environment, ServerName, Transaction string

	Timestamp string // as written
	// Message and LogEntry are the text each gives: a string, else the
	// log entry's formatted text, else its template.
	Message, LogEntry string
	Fingerprint       []string
	Tags, Modules     [][2]string // see pairs
	// Contexts is as written; Trace is contexts.trace's trace_id and
	// span_id.
	Contexts   string
	Trace      [2]string
	Extra      string // as written
	Exceptions []model.Exception
	Threads    []model.Thread
	Request    requestFields
	SDK        [2]string // name, version
}

// requestFields is the "request" interface.
type requestFields struct {
	URL, Method string
	// HasQuery and HasHeaders say whether the keys were there at all.
	HasQuery, HasHeaders bool
	// QueryKind is 0 when query_string is null, '"' when it is the
	// string QueryText, 'p' when it is the pairs QueryPairs.
	QueryKind  byte
	QueryText  string
	QueryPairs [][2]string
	Headers    [][2]string
}

var (
	eventKeys = []string{"event_id", "timestamp", "level", "platform", "logger", "release", "dist",
		"environment", "server_name", "transaction", "message", "logentry", "fingerprint", "tags",
		"contexts", "extra", "exception", "threads", "request", "sdk", "modules"}
	exceptionKeys = []string{"type", "value", "module", "thread_id", "mechanism", "stacktrace"}
	mechanismKeys = []string{"type", "handled"}
	threadKeys    = []string{"id", "name", "state", "crashed", "current", "stacktrace"}
	stackKeys     = []string{"frames"}
	frameKeys     = []string{"function", "module", "filename", "abs_path", "lineno", "colno", "in_app"}
	requestKeys   = []string{"url", "method", "query_string", "headers"}
	sdkKeys       = []string{"name", "version"}
	logEntryKeys  = []string{"message", "formatted"}
	contextsKeys  = []string{"trace"}
	traceKeys     = []string{"trace_id", "span_id"}
	valuesKeys    = []string{"values"}
)

// decodeEvent reads payload, a JSON object; false when it is not valid
// JSON.
func decodeEvent(payload []byte) (eventFields, bool) {
	// One copy of the payload: the strings of the event that need no
	// unquoting are parts of it.
	w := walker{s: string(payload)}
	var ev eventFields
	if w.peek() != '{' {
		return ev, false
	}
	w.enter()
	for n := 0; w.more(n, '}'); n++ {
		switch match(w.key(), eventKeys) {
		case "event_id":
			w.lstr(&ev.EventID)
		case "timestamp":
			a, b := w.skip()
			ev.Timestamp = w.s[a:b]
		case "level":
			w.lstr(&ev.Level)
		case "platform":
			w.lstr(&ev.Platform)
		case "logger":
			w.lstr(&ev.Logger)
		case "release":
			w.lstr(&ev.Release)
		case "dist":
			w.lstr(&ev.Dist)
		case "environment":
			w.lstr(&ev.Environment)
		case "server_name":
			w.lstr(&ev.ServerName)
		case "transaction":
			w.lstr(&ev.Transaction)
		case "message":
			ev.Message = w.messageText()
		case "logentry":
			ev.LogEntry = w.messageText()
		case "fingerprint":
			lenient(&w, &ev.Fingerprint, '[', w.strings)
		case "tags":
			ev.Tags = w.pairs()
		case "modules":
			ev.Modules = w.pairs()
		case "contexts":
			ev.Contexts, ev.Trace = w.contexts()
		case "extra":
			a, b := w.skip()
			ev.Extra = w.s[a:b]
		case "exception":
			ev.Exceptions = decodeValues(&w, (*walker).exception)
		case "threads":
			ev.Threads = decodeValues(&w, (*walker).thread)
		case "request":
			lenient(&w, &ev.Request, '{', w.request)
		case "sdk":
			lenient(&w, &ev.SDK, '{', func() [2]string { return w.twoStrings(sdkKeys) })
		default:
			w.skip()
		}
	}
	w.ws()
	return ev, !w.bad && w.i == len(w.s)
}

// match returns the name of names that key is, exactly or folded, or "".
func match(key string, names []string) string {
	for _, n := range names {
		if key == n {
			return n
		}
	}
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return n
		}
	}
	return ""
}

// walker reads JSON text s from i, checking it as it goes: after an
// error, bad is set and i is at the end, so every loop stops.
type walker struct {
	s     string
	i     int
	depth int
	bad   bool
}

func (w *walker) fail() {
	w.bad = true
	w.i = len(w.s)
}

func (w *walker) ws() {
	for w.i < len(w.s) {
		switch w.s[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value, 0 at the end.
func (w *walker) peek() byte {
	w.ws()
	if w.i < len(w.s) {
		return w.s[w.i]
	}
	return 0
}

// enter passes the '{' or '[' at i.
func (w *walker) enter() {
	w.depth++
	if w.depth > maxDepth {
		w.fail()
		return
	}
	w.i++
}

// more reports whether the object or array has another member after the
// n read, passing the comma before it; at the closing end it passes it
// and reports false.
func (w *walker) more(n int, end byte) bool {
	w.ws()
	if w.i >= len(w.s) {
		w.fail()
		return false
	}
	c := w.s[w.i]
	if c == end {
		w.i++
		w.depth--
		return false
	}
	if n > 0 {
		if c != ',' {
			w.fail()
			return false
		}
		w.i++
	}
	return true
}

// key reads an object member's key and its colon.
func (w *walker) key() string {
	if w.peek() != '"' {
		w.fail()
		return ""
	}
	k := w.str()
	if w.peek() != ':' {
		w.fail()
		return ""
	}
	w.i++
	return k
}

// skip checks and passes one value, returning where it starts and ends.
func (w *walker) skip() (start, end int) {
	c := w.peek()
	start = w.i
	switch {
	case c == '{':
		w.enter()
		for n := 0; w.more(n, '}'); n++ {
			if w.peek() != '"' {
				w.fail()
				break
			}
			w.scanString()
			if w.peek() != ':' {
				w.fail()
				break
			}
			w.i++
			w.skip()
		}
	case c == '[':
		w.enter()
		for n := 0; w.more(n, ']'); n++ {
			w.skip()
		}
	case c == '"':
		w.scanString()
	case c == 't':
		w.literal("true")
	case c == 'f':
		w.literal("false")
	case c == 'n':
		w.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		w.number()
	default:
		w.fail()
	}
	return start, w.i
}

func (w *walker) literal(word string) {
	if strings.HasPrefix(w.s[w.i:], word) {
		w.i += len(word)
		return
	}
	w.fail()
}

func (w *walker) number() {
	s, i := w.s, w.i
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if !digits() {
		w.fail()
		return
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			w.fail()
			return
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			w.fail()
			return
		}
	}
	w.i = i
}

// plainByte are the bytes a string holds as they are: printable ASCII
// but the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString passes the string at i, returning it as written and whether
// its value is the text between the quotes (no escapes, valid UTF-8).
func (w *walker) scanString() (raw string, plain bool) {
	s, start := w.s, w.i
	i := start + 1
	plain = true
	for i < len(s) {
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			w.i = i + 1
			return s[start:w.i], plain
		case c == '\\':
			plain = false
			if i+1 >= len(s) {
				w.fail()
				return "", false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
					w.fail()
					return "", false
				}
				i += 6
			default:
				w.fail()
				return "", false
			}
		case c < 0x20:
			w.fail()
			return "", false
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			i += size
		}
	}
	w.fail()
	return "", false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// str reads the string at i and returns its value; escapes and invalid
// UTF-8 are decoded as encoding/json decodes them.
func (w *walker) str() string {
	raw, plain := w.scanString()
	if w.bad {
		return ""
	}
	if plain {
		return raw[1 : len(raw)-1]
	}
	var v string
	_ = json.Unmarshal([]byte(raw), &v)
	return v
}

// text reads a value as text: a string unquoted, null empty, anything
// else as written.
func (w *walker) text() string {
	switch w.peek() {
	case '"':
		return w.str()
	case 'n':
		w.skip()
		return ""
	}
	a, b := w.skip()
	return w.s[a:b]
}

// lstr reads a string, or a number or bool as its JSON text, into p;
// other values leave p as it was.
func (w *walker) lstr(p *string) {
	switch c := w.peek(); {
	case c == '"':
		*p = w.str()
	case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f':
		a, b := w.skip()
		*p = w.s[a:b]
	default:
		w.skip()
	}
}

// lint reads an int that may also be written as a float or a numeric
// string; other values leave p as it was.
func (w *walker) lint(p *int) {
	a, b := w.skip()
	if f, err := strconv.ParseFloat(strings.Trim(w.s[a:b], `"`), 64); err == nil && f >= -1<<31 && f < 1<<31 {
		*p = int(f)
	}
}

// lbool reads a bool; null is false, other values leave p as it was.
func (w *walker) lbool(p *bool) {
	switch w.peek() {
	case 't':
		*p = true
	case 'f', 'n':
		*p = false
	}
	w.skip()
}

// lboolPtr reads a bool; null is nil, other values leave p as it was.
func (w *walker) lboolPtr(p **bool) {
	switch w.peek() {
	case 't', 'f':
		v := w.s[w.i] == 't'
		*p = &v
	case 'n':
		*p = nil
	}
	w.skip()
}

// object reads the members of the object at i, each by member, which
// gets the name of keys that the member's key is ("" for another key).
func (w *walker) object(keys []string, member func(key string)) {
	w.enter()
	for n := 0; w.more(n, '}'); n++ {
		member(match(w.key(), keys))
	}
}

// list reads the members of the list at i, each by member.
func (w *walker) list(member func()) {
	w.enter()
	for n := 0; w.more(n, ']'); n++ {
		member()
	}
}

// lenient reads a value into p as encoding/json reads a struct or a list
// whose decoding cannot fail: when the value is of the kind open ('{' or
// '['), *p is what read makes of it; null is the zero T; other values
// leave p as it was.
func lenient[T any](w *walker, p *T, open byte, read func() T) {
	switch w.peek() {
	case open:
		*p = read()
	case 'n':
		var zero T
		*p = zero
		w.skip()
	default:
		w.skip()
	}
}

// orZero reads an object by read, other values as the zero T: a member
// of a list of lenient structs.
func orZero[T any](w *walker, read func() T) T {
	if w.peek() == '{' {
		return read()
	}
	w.skip()
	var zero T
	return zero
}

// strings reads a list of lstr.
func (w *walker) strings() (out []string) {
	w.list(func() {
		var s string
		w.lstr(&s)
		out = append(out, s)
	})
	return out
}

// twoStrings reads the members of keys (two names) of the object at i.
func (w *walker) twoStrings(keys []string) (v [2]string) {
	w.object(keys, func(k string) {
		switch k {
		case keys[0]:
			w.lstr(&v[0])
		case keys[1]:
			w.lstr(&v[1])
		default:
			w.skip()
		}
	})
	return v
}

// pairs reads {"k": v, ...} or [["k", v], ...] as key/value pairs,
// values as text (see text), an object in its order; a list member that
// is not a list of two is left out. Other values have no pairs.
func (w *walker) pairs() (out [][2]string) {
	switch w.peek() {
	case '{':
		w.enter()
		for n := 0; w.more(n, '}'); n++ {
			k := w.key()
			out = append(out, [2]string{k, w.text()})
		}
	case '[':
		w.list(func() {
			if w.peek() != '[' {
				w.skip()
				return
			}
			var kv [2]string
			m := 0
			w.list(func() {
				if t := w.text(); m < 2 {
					kv[m] = t
				}
				m++
			})
			if m == 2 {
				out = append(out, kv)
			}
		})
	default:
		w.skip()
	}
	return out
}

// messageText reads a message or a log entry as the text it gives: a
// string, else the entry's formatted text, else its template.
func (w *walker) messageText() string {
	if w.peek() == '"' {
		return w.str()
	}
	var le [2]string // message, formatted
	lenient(w, &le, '{', func() [2]string { return w.twoStrings(logEntryKeys) })
	if le[1] != "" {
		return le[1]
	}
	return le[0]
}

// contexts reads the contexts as written and, when they are an object,
// contexts.trace's trace and span ids.
func (w *walker) contexts() (raw string, trace [2]string) {
	if w.peek() != '{' {
		a, b := w.skip()
		return w.s[a:b], trace
	}
	start := w.i
	w.object(contextsKeys, func(k string) {
		if k == "" {
			w.skip()
			return
		}
		lenient(w, &trace, '{', func() [2]string { return w.twoStrings(traceKeys) })
	})
	return w.s[start:w.i], trace
}

// decodeValues reads an interface that is either {"values": [...]} or a
// bare list, each member an object read by elem (null is the zero T,
// other values too). A "values" that is neither a list nor null makes
// it empty; a repeated "values" decodes over the first list's members
// as encoding/json does.
func decodeValues[T any](w *walker, elem func(*walker) T) (list []T) {
	var zero T
	switch w.peek() {
	case '[':
		w.list(func() { list = append(list, orZero(w, func() T { return elem(w) })) })
		return list
	case '{':
		typeErr := false
		w.object(valuesKeys, func(k string) {
			switch c := w.peek(); {
			case k == "":
				w.skip()
			case c == '[':
				i := 0
				w.list(func() {
					switch {
					case i < len(list):
					case i < cap(list):
						list = list[:i+1]
					default:
						list = append(list, zero)
					}
					lenient(w, &list[i], '{', func() T { return elem(w) })
					i++
				})
				list = list[:i]
				if i == 0 {
					list = []T{}
				}
			case c == 'n':
				list = nil
				w.skip()
			default:
				typeErr = true
				w.skip()
			}
		})
		if typeErr {
			return nil
		}
		return list
	}
	w.skip()
	return nil
}

// exception reads the exception object at i.
func (w *walker) exception() (e model.Exception) {
	type mechanism struct {
		typ     string
		handled *bool
	}
	var m mechanism
	w.object(exceptionKeys, func(k string) {
		switch k {
		case "type":
			w.lstr(&e.Type)
		case "value":
			w.lstr(&e.Value)
		case "module":
			w.lstr(&e.Module)
		case "thread_id":
			w.lstr(&e.ThreadID)
		case "mechanism":
			lenient(w, &m, '{', func() (m mechanism) {
				w.object(mechanismKeys, func(k string) {
					switch k {
					case "type":
						w.lstr(&m.typ)
					case "handled":
						w.lboolPtr(&m.handled)
					default:
						w.skip()
					}
				})
				return m
			})
		case "stacktrace":
			lenient(w, &e.Frames, '{', w.stack)
		default:
			w.skip()
		}
	})
	e.Mechanism, e.Handled = m.typ, m.handled
	return e
}

// thread reads the thread object at i.
func (w *walker) thread() (t model.Thread) {
	w.object(threadKeys, func(k string) {
		switch k {
		case "id":
			w.lstr(&t.ID)
		case "name":
			w.lstr(&t.Name)
		case "state":
			w.lstr(&t.State)
		case "crashed":
			w.lbool(&t.Crashed)
		case "current":
			w.lbool(&t.Current)
		case "stacktrace":
			lenient(w, &t.Frames, '{', w.stack)
		default:
			w.skip()
		}
	})
	return t
}

// stack reads the frames of the stack trace object at i; none is nil.
func (w *walker) stack() (fs []model.Frame) {
	w.object(stackKeys, func(k string) {
		if k == "" {
			w.skip()
			return
		}
		lenient(w, &fs, '[', func() (list []model.Frame) {
			w.list(func() { list = append(list, orZero(w, w.frame)) })
			return list
		})
	})
	if len(fs) == 0 {
		return nil
	}
	return fs
}

// frame reads the frame object at i.
func (w *walker) frame() (f model.Frame) {
	w.object(frameKeys, func(k string) {
		switch k {
		case "function":
			w.lstr(&f.Function)
		case "module":
			w.lstr(&f.Module)
		case "filename":
			w.lstr(&f.Filename)
		case "abs_path":
			w.lstr(&f.AbsPath)
		case "lineno":
			w.lint(&f.Line)
		case "colno":
			w.lint(&f.Column)
		case "in_app":
			w.lbool(&f.InApp)
		default:
			w.skip()
		}
	})
	return f
}

// request reads the request object at i.
func (w *walker) request() (r requestFields) {
	w.object(requestKeys, func(k string) {
		switch k {
		case "url":
			w.lstr(&r.URL)
		case "method":
			w.lstr(&r.Method)
		case "query_string":
			r.HasQuery = true
			r.QueryText, r.QueryPairs = "", nil
			switch w.peek() {
			case 'n':
				r.QueryKind = 0
				w.skip()
			case '"':
				r.QueryKind, r.QueryText = '"', w.str()
			default:
				r.QueryKind, r.QueryPairs = 'p', w.pairs()
			}
		case "headers":
			r.HasHeaders = true
			r.Headers = w.pairs()
		default:
			w.skip()
		}
	})
	return r
}
