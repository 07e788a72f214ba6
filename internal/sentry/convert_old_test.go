package sentry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// The event decoder as it was before the single-pass reader, kept to
// check that the reader decodes every payload the same way.

// The event payload as SDKs write it. Sentry's ingestion is lenient about
// types (a release may be a number, a tag value a bool, interfaces come
// as {"values": [...]} or as a bare list), so fields that SDKs disagree
// on are decoded by the types below, which never fail on a well-formed
// JSON value of another type: what does not fit is dropped.

type oldEvent struct {
	EventID     lstr             `json:"event_id"`
	Timestamp   json.RawMessage  `json:"timestamp"`
	Level       lstr             `json:"level"`
	Platform    lstr             `json:"platform"`
	Logger      lstr             `json:"logger"`
	Release     lstr             `json:"release"`
	Dist        lstr             `json:"dist"`
	Environment lstr             `json:"environment"`
	ServerName  lstr             `json:"server_name"`
	Transaction lstr             `json:"transaction"`
	Message     json.RawMessage  `json:"message"`  // a string, or a log entry
	LogEntry    json.RawMessage  `json:"logentry"` // {"message", "formatted", "params"}
	Fingerprint lany[[]lstr]     `json:"fingerprint"`
	Tags        json.RawMessage  `json:"tags"` // {"k": "v"} or [["k", "v"], ...]
	Contexts    json.RawMessage  `json:"contexts"`
	Extra       json.RawMessage  `json:"extra"`
	Exception   json.RawMessage  `json:"exception"` // {"values": [...]} or [...]
	Threads     json.RawMessage  `json:"threads"`   // likewise
	Request     lany[oldRequest] `json:"request"`
	SDK         lany[oldSDKInfo] `json:"sdk"`
	Modules     json.RawMessage  `json:"modules"` // {"name": "version"}
}

type oldLogEntry struct {
	Message   lstr `json:"message"`
	Formatted lstr `json:"formatted"`
}

type oldException struct {
	Type       lstr               `json:"type"`
	Value      lstr               `json:"value"`
	Module     lstr               `json:"module"`
	ThreadID   lstr               `json:"thread_id"`
	Mechanism  lany[oldMechanism] `json:"mechanism"`
	Stacktrace lany[oldStack]     `json:"stacktrace"`
}

type oldMechanism struct {
	Type    lstr        `json:"type"`
	Handled lany[*bool] `json:"handled"`
}

type oldThread struct {
	ID         lstr           `json:"id"`
	Name       lstr           `json:"name"`
	State      lstr           `json:"state"`
	Crashed    lany[bool]     `json:"crashed"`
	Current    lany[bool]     `json:"current"`
	Stacktrace lany[oldStack] `json:"stacktrace"`
}

type oldStack struct {
	Frames lany[[]lany[oldFrame]] `json:"frames"`
}

type oldFrame struct {
	Function lstr       `json:"function"`
	Module   lstr       `json:"module"`
	Filename lstr       `json:"filename"`
	AbsPath  lstr       `json:"abs_path"`
	Line     lint       `json:"lineno"`
	Column   lint       `json:"colno"`
	InApp    lany[bool] `json:"in_app"`
}

type oldRequest struct {
	URL         lstr            `json:"url"`
	Method      lstr            `json:"method"`
	QueryString json.RawMessage `json:"query_string"` // "a=b" or {"a": "b"} or [["a", "b"]]
	Headers     json.RawMessage `json:"headers"`      // {"k": "v"} or [["k", "v"]]
}

type oldSDKInfo struct {
	Name    lstr `json:"name"`
	Version lstr `json:"version"`
}

type oldTraceContext struct {
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
func oldConvert(payload []byte, project, eventID string, received time.Time) (model.Dump, error) {
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || payload[0] != '{' {
		return model.Dump{}, &EventError{Msg: "the payload is not a JSON object"}
	}
	var ev oldEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return model.Dump{}, &EventError{Msg: "invalid JSON: " + jsonProblem(err)}
	}
	d := model.Dump{
		Project:     project,
		Received:    received.UnixNano(),
		Level:       strings.ToLower(string(ev.Level)),
		Platform:    string(ev.Platform),
		Logger:      string(ev.Logger),
		Release:     string(ev.Release),
		Dist:        string(ev.Dist),
		Environment: string(ev.Environment),
		ServerName:  string(ev.ServerName),
		Transaction: string(ev.Transaction),
	}
	id := string(ev.EventID)
	if id == "" {
		id = eventID
	}
	var err error
	if d.EventID, err = normalizeEventID(id); err != nil {
		return model.Dump{}, err
	}
	if d.Level == "" {
		d.Level = "error"
	}
	if d.Level == "warn" {
		d.Level = "warning"
	}
	d.Timestamp = parseTimestamp(string(bytes.TrimSpace(ev.Timestamp)), received).UnixNano()
	d.Message = oldMessage(ev.LogEntry, ev.Message)
	for _, f := range ev.Fingerprint.V {
		d.Fingerprint = append(d.Fingerprint, string(f))
	}
	d.Tags = sortedAttrs(pairs(ev.Tags))
	d.Modules = sortedAttrs(pairs(ev.Modules))
	if s := ev.SDK.V; s.Name != "" {
		d.SDK = string(s.Name)
		if s.Version != "" {
			d.SDK += "/" + string(s.Version)
		}
	}
	if isObject(string(bytes.TrimSpace(ev.Contexts))) {
		d.Contexts = ev.Contexts
		var tc oldTraceContext
		if json.Unmarshal(ev.Contexts, &tc) == nil {
			d.TraceID = hexID(string(tc.Trace.V.TraceID))
			d.SpanID = hexID(string(tc.Trace.V.SpanID))
		}
	}
	if isObject(string(bytes.TrimSpace(ev.Extra))) {
		d.Extra = ev.Extra
	}
	for _, ex := range values[oldException](ev.Exception) {
		e := model.Exception{
			Type:      string(ex.Type),
			Value:     string(ex.Value),
			Module:    string(ex.Module),
			ThreadID:  string(ex.ThreadID),
			Mechanism: string(ex.Mechanism.V.Type),
			Handled:   ex.Mechanism.V.Handled.V,
			Frames:    oldFrames(ex.Stacktrace.V),
		}
		if e.Type == "" && e.Value == "" && len(e.Frames) == 0 {
			continue
		}
		d.Exceptions = append(d.Exceptions, e)
	}
	for _, th := range values[oldThread](ev.Threads) {
		d.Threads = append(d.Threads, model.Thread{
			ID:      string(th.ID),
			Name:    string(th.Name),
			State:   string(th.State),
			Crashed: th.Crashed.V,
			Current: th.Current.V,
			Frames:  oldFrames(th.Stacktrace.V),
		})
	}
	if r := ev.Request.V; r.URL != "" || r.Method != "" || len(r.Headers) > 0 || len(r.QueryString) > 0 {
		d.Request = oldConvertRequest(r)
	}
	d.Service = project
	if d.ServerName != "" {
		d.Service = d.ServerName
	}
	for _, t := range d.Tags {
		switch t.Key {
		case "service":
			if t.Value != "" {
				d.Service = t.Value
			}
		case "grade":
			if g, err := strconv.Atoi(t.Value); err == nil && g >= 1 && g <= 4 {
				d.Grade = g
			}
		}
	}
	return d, nil
}
func oldMessage(logentry, msg json.RawMessage) string {
	for _, raw := range []json.RawMessage{logentry, msg} {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if raw[0] == '"' {
			if s := text(raw); s != "" {
				return s
			}
			continue
		}
		var le lany[oldLogEntry]
		_ = json.Unmarshal(raw, &le)
		if le.V.Formatted != "" {
			return string(le.V.Formatted)
		}
		if le.V.Message != "" {
			return string(le.V.Message)
		}
	}
	return ""
}
func oldFrames(st oldStack) []model.Frame {
	if len(st.Frames.V) == 0 {
		return nil
	}
	out := make([]model.Frame, 0, len(st.Frames.V))
	for _, f := range st.Frames.V {
		out = append(out, model.Frame{
			Function: string(f.V.Function),
			Module:   string(f.V.Module),
			Filename: string(f.V.Filename),
			AbsPath:  string(f.V.AbsPath),
			Line:     int(f.V.Line),
			Column:   int(f.V.Column),
			InApp:    f.V.InApp.V,
		})
	}
	return out
}
func oldConvertRequest(r oldRequest) *model.DumpRequest {
	out := &model.DumpRequest{Method: strings.ToUpper(string(r.Method))}
	rawURL := string(r.URL)
	query := ""
	if u, err := url.Parse(rawURL); err == nil {
		if u.User != nil {
			u.User = nil
		}
		query = u.RawQuery
		u.RawQuery, u.ForceQuery = "", false
		rawURL = u.String()
	} else if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		rawURL, query = rawURL[:i], rawURL[i+1:]
	}
	out.URL = rawURL
	if qs := strings.TrimSpace(string(r.QueryString)); qs != "" && qs != "null" {
		if qs[0] == '"' {
			query = strings.TrimPrefix(text(r.QueryString), "?")
		} else {
			v := url.Values{}
			for _, p := range pairs(r.QueryString) {
				v.Add(p[0], p[1])
			}
			query = v.Encode()
		}
	}
	out.Query = redactQuery(query)
	ps := pairs(r.Headers)
	for i := range ps {
		ps[i][1] = RedactHeader(ps[i][0], ps[i][1])
	}
	out.Headers = sortedAttrs(ps)
	return out
}

// sameAsBefore are payloads where the lenient decoding has corners:
// repeated keys, keys in other cases, nulls, values of the wrong type,
// deep nesting and JSON that is not well-formed.
var sameAsBefore = []string{
	`{"level":"a","level":null,"LEVEL":3,"Ŀevel":"x","releaſe":"r","ſdk":{"name":"n"},"sdk":"no"}`,
	`{"exception":{"values":[{"type":"A","stacktrace":{"frames":[{"function":"f"}]}},{"type":"B"}],"values":["s",null]}}`,
	`{"exception":{"values":[{"type":"A"},{"type":"B"},{"type":"C"}],"values":[{"type":"D"}],"values":[1,2,3]}}`,
	`{"exception":{"values":[{"type":"A"}],"values":[],"values":[1]}}`,
	`{"exception":{"values":[{"type":"A"}],"VALUES":5}}`,
	`{"exception":{"values":null,"values":[{"value":"v"}]},"exception":[{"type":"x"},"y",null,[]]}`,
	`{"threads":{"values":[{"id":1,"crashed":true,"crashed":null,"current":"yes","stacktrace":{"frames":[{"lineno":"12","colno":1.9,"in_app":1},null,5]}}]}}`,
	`{"threads":[{"id":true,"stacktrace":{"frames":[]},"stacktrace":"x"},{"stacktrace":null},{"stacktrace":{"frames":{"a":1}}}]}`,
	`{"exception":[{"mechanism":{"type":"panic","handled":false},"mechanism":"x"},{"mechanism":{"handled":"no"}},{"mechanism":null,"type":"t"}]}`,
	`{"message":"m","logentry":{"formatted":"","message":7},"logentry":{"message":"lm"}}`,
	`{"message":{"formatted":"f"},"logentry":"","logentry":null}`,
	`{"message":["x"],"message":"\u00e9\ud800x\\y"}`,
	`{"fingerprint":["a",1,true,null,{}],"fingerprint":"x"}`,
	`{"fingerprint":["a"],"fingerprint":null}`,
	`{"tags":{"b":"1","a":2,"b":null,"c":{"d" : [1, 2]}},"tags":{"service":"svc","grade":"2"}}`,
	`{"tags":[["a","b"],["c"],"x",["d",1,2],["e",null],null],"modules":{"m":"v1"},"modules":5}`,
	`{"contexts":{"trace":{"trace_id":"ABCDEF0123456789abcdef0123456789","span_id":"0123456789ABCDEF"},"trace":"x"},"extra":{"k":[1]}}`,
	`{"contexts":{"trace":{"trace_id":"ab"},"TRACE":null},"extra":{}}`,
	`{"contexts":{ },"extra":"e","contexts":{}}`,
	`{"request":{"url":"http://u:p@h/p?a=1&token=2","method":"get","headers":{"Cookie":"c","X":"y"},"query_string":"?q=1&password=p"}}`,
	`{"request":{"url":"http://h/p?a=1","query_string":[["k","v"],["secret","s"]],"query_string":null,"headers":[["Authorization","b"]]}}`,
	`{"request":{"url":"%zz?x=1","query_string":5,"headers":"h"},"request":"r"}`,
	`{"request":{"query_string":{"a":"b"}},"request":null}`,
	`{"request":{"headers":null}}`,
	`{"timestamp":"2024-01-02T03:04:05.5","timestamp":1.5e9,"event_id":"0123456789ABCDEF0123456789ABCDEF"}`,
	`{"timestamp":"1700000000.25","event_id":123}`,
	`{"event_id":"not-hex"}`,
	`{"k\u0065y":1,"l\u0065vel":"warn","server_name":"host","platform":false}`,
	"{\"level\":\"a\xffb\",\"logger\":\"\xe2\x82\"}",
	`{"a":[` + strings.Repeat(`[`, 9998) + strings.Repeat(`]`, 9998) + `]}`,
	`{"a":[` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 9999) + `]}`,
	`{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":.5}`, `{"a":tru}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a":[,1]}`, `{"a":{,}}`, `{"a":1}}`, `{"a":1} x`,
	`{"a":"`, `{"a":[1`, `{"a"`, `{`, `{"a":1e+5,"b":-0.0E-2,"c":[]  ,"d" : { } }`,
}

func eventsOf(t testing.TB, pattern string) [][]byte {
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(f, ".envelope") {
			out = append(out, b)
			continue
		}
		r, err := NewEnvelopeReader(bytes.NewReader(b), DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for {
			it, err := r.Next()
			if err != nil {
				break
			}
			out = append(out, it.Payload)
		}
	}
	return out
}

// checkSameAsBefore returns the number of frames the event has.
func checkSameAsBefore(t *testing.T, payload []byte) int {
	t.Helper()
	const id = "0123456789abcdef0123456789abcdef"
	got, err := Convert(payload, "1", id, time.Unix(1, 0))
	want, werr := oldConvert(payload, "1", id, time.Unix(1, 0))
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("%q: error %v; before %v", clip(string(payload), 200), err, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", clip(string(payload), 200), got, want)
	}
	n := 0
	for _, th := range got.Threads {
		n += len(th.Frames)
	}
	for _, e := range got.Exceptions {
		n += len(e.Frames)
	}
	return n
}

func TestConvertSameAsBefore(t *testing.T) {
	payloads := append(eventsOf(t, "testdata/events/*.json"), eventsOf(t, "testdata/envelopes/*.envelope")...)
	for _, p := range sameAsBefore {
		payloads = append(payloads, []byte(p))
	}
	for _, p := range payloads {
		checkSameAsBefore(t, p)
	}
}

func FuzzConvertSameAsBefore(f *testing.F) {
	for _, p := range eventsOf(f, "testdata/events/*.json") {
		f.Add(p)
	}
	for _, p := range eventsOf(f, "testdata/envelopes/*.envelope") {
		f.Add(p)
	}
	for _, p := range sameAsBefore {
		if len(p) < 1000 {
			f.Add([]byte(p))
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkSameAsBefore(t, payload) })
}

// TestConvertSameAsBeforeRandom compares the decoders on generated
// events whose members are any of the event's keys (in other cases too)
// at any depth, with values of every JSON type.
func TestConvertSameAsBeforeRandom(t *testing.T) {
	keys := slices.Concat(eventKeys, exceptionKeys, threadKeys, frameKeys, requestKeys, sdkKeys,
		logEntryKeys, contextsKeys, traceKeys, valuesKeys, []string{"VALUES", "Frames", "ſdk", "other", "handled"})
	scalars := []string{`"a"`, `""`, `"x\ny"`, `"\u00e9"`, `"12"`, `"1.5e3"`, `"?q=1&token=t"`, `"http://u:p@h/p?a=1"`,
		`"0123456789abcdef0123456789abcdef"`, `"abcdef0123456789"`, `"service"`, `"grade"`, `"2"`, `"warn"`,
		`0`, `-1`, `3.7`, `1e40`, `1700000000.5`, `true`, `false`, `null`}
	// inside names the keys likely inside a member of each key, so that
	// generated events have the shape of real ones often enough.
	inside := map[string][]string{
		"exception": valuesKeys, "threads": valuesKeys, "exception[]": exceptionKeys, "threads[]": threadKeys,
		"values[]": slices.Concat(exceptionKeys, threadKeys), "stacktrace": stackKeys, "frames[]": frameKeys,
		"request": requestKeys, "sdk": sdkKeys, "message": logEntryKeys, "logentry": logEntryKeys,
		"contexts": contextsKeys, "trace": traceKeys, "mechanism": mechanismKeys, "": eventKeys,
	}
	lists := map[string]bool{"exception": true, "threads": true, "values": true, "frames": true, "tags": true, "fingerprint": true}
	rng := rand.New(rand.NewPCG(1, 2))
	var value func(b *strings.Builder, depth int, parent string)
	value = func(b *strings.Builder, depth int, parent string) {
		n := rng.IntN(10)
		if lists[parent] && n >= 2 {
			n = 9 // mostly a list
		} else if inside[parent] != nil && n >= 2 {
			n = 5 // mostly an object
		}
		switch {
		case depth > 7 || n < 3:
			b.WriteString(scalars[rng.IntN(len(scalars))])
		case n < 8:
			b.WriteByte('{')
			for i := range rng.IntN(7) {
				if i > 0 {
					b.WriteByte(',')
				}
				k := keys[rng.IntN(len(keys))]
				if in := inside[parent]; len(in) > 0 && rng.IntN(4) > 0 {
					k = in[rng.IntN(len(in))]
				}
				fmt.Fprintf(b, "%q:", k)
				value(b, depth+1, k)
			}
			b.WriteByte('}')
		default:
			b.WriteByte('[')
			for i := range rng.IntN(5) {
				if i > 0 {
					b.WriteByte(',')
				}
				value(b, depth+1, parent+"[]")
			}
			b.WriteByte(']')
		}
	}
	frames := 0
	n := 5000
	if testing.Short() {
		n = 500
	}
	for range n {
		var b strings.Builder
		b.WriteByte('{')
		for i := range rng.IntN(12) {
			if i > 0 {
				b.WriteByte(',')
			}
			k := eventKeys[rng.IntN(len(eventKeys))]
			fmt.Fprintf(&b, "%q:", k)
			value(&b, 1, k)
		}
		b.WriteByte('}')
		frames += checkSameAsBefore(t, []byte(b.String()))
	}
	if frames < n/10 {
		t.Errorf("%d frames in %d events: the generator does not make real events", frames, n)
	}
}
