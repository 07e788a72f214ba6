package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

var received = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// seedDumps converts every event item of a seed envelope.
func seedDumps(t *testing.T, file string) []model.Dump {
	t.Helper()
	f, err := os.Open("testdata/envelopes/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewEnvelopeReader(f, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var out []model.Dump
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if Keeps(it.Type) {
			d, err := Convert(it.Payload, "42", r.Header().EventID, received)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			out = append(out, d)
		}
	}
}

func attr(as []model.Attr, k string) string {
	for _, a := range as {
		if a.Key == k {
			return a.Value
		}
	}
	return ""
}

func TestConvertSentryGoPanic(t *testing.T) {
	ds := seedDumps(t, "sentry-go-panic.envelope")
	if len(ds) != 1 {
		t.Fatalf("got %d dumps; want 1", len(ds))
	}
	d := ds[0]
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %q; want %q", name, got, want)
		}
	}
	check("event_id", d.EventID, "86cb9bcfffca4cb381f295f0ff03db9e")
	check("project", d.Project, "42")
	check("service", d.Service, "api")
	check("level", d.Level, "fatal")
	check("platform", d.Platform, "go")
	check("release", d.Release, "api@2.0.0")
	check("environment", d.Environment, "prod")
	check("server_name", d.ServerName, "go-host")
	check("trace_id", d.TraceID, "70679ffb003b2fc69ce109d538c5f0cc")
	check("span_id", d.SpanID, "0a4461f3a7c9389e")
	check("sdk", d.SDK, "sentry.go/0.50.0")
	check("module", attr(d.Modules, "github.com/getsentry/sentry-go"), "v0.50.0")
	if d.Grade != 1 {
		t.Errorf("grade: got %d; want 1", d.Grade)
	}
	if want := time.Date(2026, 12, 3, 2, 49, 35, 458105978, time.UTC).UnixNano(); d.Timestamp != want {
		t.Errorf("timestamp: got %d; want %d", d.Timestamp, want)
	}
	if d.Received != received.UnixNano() {
		t.Errorf("received: got %d", d.Received)
	}
	if len(d.Exceptions) != 1 {
		t.Fatalf("exceptions: %+v", d.Exceptions)
	}
	e := d.Exceptions[0]
	check("type", e.Type, "runtime.plainError")
	check("value", e.Value, "assignment to entry in nil map")
	if len(e.Frames) != 2 || e.Frames[0].Function != "main" || e.Frames[1].Function != "handler" || !e.Frames[1].InApp || e.Frames[1].Line != 19 {
		t.Errorf("frames, oldest first: %+v", e.Frames)
	}
	if d.Request == nil {
		t.Fatal("no request")
	}
	check("request url", d.Request.URL, "http://api.local/orders")
	check("query", d.Request.Query, "id=7&token=[Filtered]")
	check("authorization", attr(d.Request.Headers, "Authorization"), Filtered)
	check("x-request-id", attr(d.Request.Headers, "X-Request-Id"), "r-1")
	if !strings.Contains(string(d.Contexts), `"runtime"`) {
		t.Errorf("contexts not kept: %s", d.Contexts)
	}
}

func TestConvertSentryGoMessageThreads(t *testing.T) {
	d := seedDumps(t, "sentry-go-message.envelope")[0]
	if d.Message != "hello from go" || d.Level != "info" {
		t.Errorf("message %q level %q", d.Message, d.Level)
	}
	if len(d.Threads) != 1 || !d.Threads[0].Current || len(d.Threads[0].Frames) == 0 || !d.Threads[0].Frames[0].InApp {
		t.Errorf("threads: %+v", d.Threads)
	}
}

func TestConvertPython(t *testing.T) {
	d := seedDumps(t, "python-chained.envelope")[0]
	if len(d.Exceptions) != 2 || d.Exceptions[0].Type != "ZeroDivisionError" || d.Exceptions[1].Type != "ValueError" || d.Exceptions[1].Value != "chained" {
		t.Fatalf("chain, cause first: %+v", d.Exceptions)
	}
	fr := d.Exceptions[1].Frames
	if len(fr) == 0 || fr[len(fr)-1].Function != "<module>" || fr[len(fr)-1].Filename != "send.py" {
		t.Errorf("frames: %+v", fr)
	}
	if d.Service != "checkout" || d.Grade != 2 || d.Platform != "python" || d.Release != "shop@1.2.3" || d.ServerName != "py-host" {
		t.Errorf("got service %q grade %d platform %q release %q host %q", d.Service, d.Grade, d.Platform, d.Release, d.ServerName)
	}
	if len(d.TraceID) != 32 {
		t.Errorf("trace id %q", d.TraceID)
	}
	if h := d.Exceptions[1].Handled; h == nil || !*h {
		t.Errorf("handled: %v", h)
	}
	if d.Timestamp == received.UnixNano() {
		t.Error("the event's timestamp was not read")
	}
	if d := seedDumps(t, "python-logging.envelope")[0]; d.Message != "a formatted log" || d.Logger != "app" {
		t.Errorf("logging: message %q logger %q", d.Message, d.Logger)
	}
	if d := seedDumps(t, "python-message.envelope")[0]; d.Message != "hello from python" {
		t.Errorf("message %q", d.Message)
	}
	if ds := seedDumps(t, "python-transaction.envelope"); len(ds) != 0 {
		t.Errorf("a transaction became %d dumps", len(ds))
	}
}

func TestConvertJavaScriptShapes(t *testing.T) {
	b, err := os.ReadFile("testdata/events/javascript.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Convert(b, "7", "", received)
	if err != nil {
		t.Fatal(err)
	}
	want := model.Dump{EventID: "fa90fdead5f74052b091eb1c2a1e7c5b", Service: "web", Level: "warning", Release: "7", Message: "Failed to load %s",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", SDK: "sentry.javascript.browser/8.0.0"}
	if d.EventID != want.EventID || d.Service != want.Service || d.Level != want.Level || d.Release != want.Release || d.Message != want.Message ||
		d.TraceID != want.TraceID || d.SpanID != want.SpanID || d.SDK != want.SDK {
		t.Errorf("got %+v", d)
	}
	if ts := time.Unix(0, d.Timestamp).UTC(); !ts.Equal(time.Date(2025, 1, 1, 0, 0, 0, 250e6, time.UTC)) {
		t.Errorf("timestamp %v", ts)
	}
	if got := attr(d.Tags, "browser"); got != "Chrome" || len(d.Tags) != 2 {
		t.Errorf("tags as pairs, last value wins, sorted: %+v", d.Tags)
	}
	if strings.Join(d.Fingerprint, ",") != "{{ default }},checkout" {
		t.Errorf("fingerprint %q", d.Fingerprint)
	}
	e := d.Exceptions[0]
	if e.Mechanism != "onerror" || e.Handled == nil || *e.Handled || len(e.Frames) != 2 || e.Frames[1].InApp != true || e.Frames[0].InApp || e.Frames[1].Column != 7 {
		t.Errorf("exception %+v", e)
	}
	r := d.Request
	if r.Method != "POST" || r.URL != "https://app.example/cart" || r.Query != "step=2&api_key=%5BFiltered%5D" {
		t.Errorf("request %+v", r)
	}
	for _, h := range []string{"Authorization", "Cookie", "X-Auth-Token"} {
		if got := attr(r.Headers, h); got != Filtered {
			t.Errorf("header %s: got %q; want it redacted", h, got)
		}
	}
	if got := attr(r.Headers, "User-Agent"); got != "Mozilla/5.0" {
		t.Errorf("user-agent %q", got)
	}
}

func TestConvertLenientAndBad(t *testing.T) {
	ok := func(in string, check func(model.Dump) bool) {
		t.Helper()
		d, err := Convert([]byte(in), "1", "", received)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !check(d) {
			t.Errorf("%s: got %+v", in, d)
		}
	}
	ok(`{"message":"m","timestamp":"2024-05-06T07:08:09.5"}`, func(d model.Dump) bool {
		return d.Timestamp == time.Date(2024, 5, 6, 7, 8, 9, 5e8, time.UTC).UnixNano() && len(d.EventID) == 32 && d.Level == "error" && d.Service == "1"
	})
	ok(`{"message":"m","timestamp":"yesterday"}`, func(d model.Dump) bool { return d.Timestamp == received.UnixNano() })
	ok(`{"message":"m","timestamp":"1700000000"}`, func(d model.Dump) bool { return d.Timestamp == 1700000000*int64(time.Second) })
	ok(`{"message":{"formatted":"f","message":"t"},"level":"WARN"}`, func(d model.Dump) bool { return d.Message == "f" && d.Level == "warning" })
	ok(`{"exception":"nonsense","threads":{"values":[{"id":7,"crashed":true,"stacktrace":{"frames":[{"function":"f","lineno":"12"}]}}]},"tags":{"n":1,"b":true}}`, func(d model.Dump) bool {
		return len(d.Exceptions) == 0 && len(d.Threads) == 1 && d.Threads[0].ID == "7" && d.Threads[0].Crashed && d.Threads[0].Frames[0].Line == 12 &&
			attr(d.Tags, "n") == "1" && attr(d.Tags, "b") == "true"
	})
	ok(`{"message":"m","server_name":"h1","tags":{"grade":"9"}}`, func(d model.Dump) bool { return d.Service == "h1" && d.Grade == 0 })
	bad := func(in, want string) {
		t.Helper()
		_, err := Convert([]byte(in), "1", "", received)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v; want an error containing %q", in, err, want)
		}
	}
	bad(`[]`, "not a JSON object")
	bad(``, "not a JSON object")
	bad(`{"message":"m"`, "invalid JSON")
	bad(`{"message":"m","event_id":"xyz"}`, `event_id "xyz" is not a UUID`)
}

func TestAuth(t *testing.T) {
	a, err := ParseAuthHeader("Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=abc, sentry_secret=s")
	if err != nil || a.Key != "abc" || a.Client != "sentry.go/0.50.0" {
		t.Errorf("got %+v %v", a, err)
	}
	if _, err := ParseAuthHeader("Sentry sentry_version=7, sentry_secret=hidden"); err == nil || strings.Contains(err.Error(), "hidden") {
		t.Errorf("no key: got %v; want an error without the secret", err)
	}
	k, p, err := KeyFromDSN("https://pk@o1.ingest.example/sub/42")
	if err != nil || k != "pk" || p != "42" {
		t.Errorf("dsn: %q %q %v", k, p, err)
	}
	if _, _, err := KeyFromDSN("https://o1.ingest.example/42"); err == nil {
		t.Error("dsn without key accepted")
	}
}

// BenchmarkEnvelopeToDump measures reading sentry-go's panic envelope and
// converting its event: the intake's CPU cost per event, before the queue.
func BenchmarkEnvelopeToDump(b *testing.B) {
	body := benchInput(b, "testdata/envelopes/sentry-go-panic.envelope")
	for b.Loop() {
		r, err := NewEnvelopeReader(bytes.NewReader(body), DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		for {
			it, err := r.Next()
			if err != nil {
				break
			}
			if _, err := Convert(it.Payload, "42", r.Header().EventID, received); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkConvertGoPanic measures converting a Go panic event as
// sdk/dump reports it (28 goroutines, 117 frames, 25 KB of JSON): the
// intake's decoding cost per event of a realistic crash.
func BenchmarkConvertGoPanic(b *testing.B) {
	payload := benchInput(b, "testdata/events/go-panic.json")
	for b.Loop() {
		if _, err := Convert(payload, "42", "", received); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeGoPanicDump measures encoding that event's dump, as the
// intake encodes it for the queue and the embedded store for its journal:
// EncodeJSON, and json.Marshal that it stands in for.
func BenchmarkEncodeGoPanicDump(b *testing.B) {
	d, err := Convert(benchInput(b, "testdata/events/go-panic.json"), "42", "", received)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("EncodeJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.EncodeJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchInput reads a benchmark's input, whose size is the benchmark's
// bytes per operation.
func benchInput(b *testing.B, file string) []byte {
	in, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	return in
}

func TestFixTimestamp(t *testing.T) {
	now := received
	f := func(name string, ts time.Time, sentAt string, want time.Time) {
		t.Helper()
		d := model.Dump{Timestamp: ts.UnixNano()}
		FixTimestamp(&d, sentAt, now)
		if got := time.Unix(0, d.Timestamp).UTC(); !got.Equal(want) {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
	f("in time", now.Add(-time.Second), "", now.Add(-time.Second))
	f("small drift kept", now.Add(-time.Second), now.Add(-10*time.Minute).Format(time.RFC3339Nano), now.Add(-time.Second))
	f("clock two hours behind", now.Add(-2*time.Hour-time.Second), now.Add(-2*time.Hour).Format(time.RFC3339Nano), now.Add(-time.Second))
	f("clock a year ahead", now.AddDate(1, 0, 0).Add(-time.Second), now.AddDate(1, 0, 0).Format(time.RFC3339Nano), now.Add(-time.Second))
	f("future without sent_at", now.Add(time.Hour), "", now)
	f("too old", now.AddDate(0, -2, 0), "", now)
	f("bad sent_at ignored", now.Add(-time.Second), "noon", now.Add(-time.Second))
}

// TestConvertLenientCorners pins how the reader decodes what encoding/json
// would have decoded into lenient fields: repeated keys decode over the
// first (a repeated "values" list over the first list's members), keys
// match in other cases (Unicode folding), null resets a struct, a list or
// a bool, a value of the wrong type leaves the field as it was.
func TestConvertLenientCorners(t *testing.T) {
	for _, c := range []struct{ payload, want string }{
		{`{"level":"a","level":null,"LEVEL":3,"Ŀevel":"x","releaſe":"r","ſdk":{"name":"n"},"sdk":"no"}`,
			`<nil> level=3 release=r sdk=n msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra=`},
		{`{"exception":{"values":[{"type":"A"},{"type":"B"},{"type":"C"}],"values":[{"type":"D"}],"values":[1,2,3]}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 ex{D   false 0} ex{B   false 0} ex{C   false 0} tags=[] modules=[] ctx= extra=`},
		{`{"exception":{"values":null,"values":[{"value":"v"}]},"exception":[{"type":"x"},"y",null,[]]}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 ex{x   false 0} tags=[] modules=[] ctx= extra=`},
		{`{"threads":{"values":[{"id":1,"crashed":true,"crashed":null,"current":"yes","stacktrace":{"frames":[{"lineno":"12","colno":1.9,"in_app":1},null,5]}}]}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 th{1 false false [{    12 1 false} {    0 0 false} {    0 0 false}]} tags=[] modules=[] ctx= extra=`},
		{`{"threads":[{"id":true,"stacktrace":{"frames":[]},"stacktrace":"x"},{"stacktrace":null},{"stacktrace":{"frames":{"a":1}}}]}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 th{true false false []} th{ false false []} th{ false false []} tags=[] modules=[] ctx= extra=`},
		{`{"exception":[{"mechanism":{"type":"panic","handled":false},"mechanism":"x"},{"mechanism":{"handled":"no"}},{"mechanism":null,"type":"t"}]}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 ex{t   false 0} tags=[] modules=[] ctx= extra=`},
		{`{"message":"m","logentry":{"formatted":"","message":7},"logentry":{"message":"lm"}}`,
			`<nil> level=error release= sdk= msg="lm" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra=`},
		{`{"message":["x"],"message":"\u00e9\ud800x\\y"}`,
			`<nil> level=error release= sdk= msg="é�x\\y" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra=`},
		{`{"fingerprint":["a",1,true,null,{}],"fingerprint":"x"}`,
			`<nil> level=error release= sdk= msg="" fp=["a" "1" "true" "" ""] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra=`},
		{`{"tags":{"b":"1","a":2,"b":null,"c":{"d" : [1, 2]}},"tags":{"service":"svc","grade":"2"}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=svc grade=2 ts=1000000000 tags=[{grade 2} {service svc}] modules=[] ctx= extra=`},
		{`{"tags":[["a","b"],["c"],"x",["d",1,2],["e",null],null],"modules":{"m":"v1"},"modules":5}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[{a b} {e }] modules=[] ctx= extra=`},
		{`{"contexts":{"trace":{"trace_id":"ABCDEF0123456789abcdef0123456789","span_id":"0123456789ABCDEF"},"trace":"x"},"extra":{"k":[1]}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=abcdef0123456789abcdef0123456789/0123456789abcdef svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx={"trace":{"trace_id":"ABCDEF0123456789abcdef0123456789","span_id":"0123456789ABCDEF"},"trace":"x"} extra={"k":[1]}`},
		{`{"contexts":{ },"extra":"e","contexts":{}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra=`},
		{`{"request":{"url":"http://u:p@h/p?a=1&token=2","method":"get","headers":{"Cookie":"c","X":"y"},"query_string":"?q=1&password=p"}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra= req={Method:GET URL:http://h/p Query:q=1&password=%5BFiltered%5D Headers:[{Key:Cookie Value:[Filtered]} {Key:X Value:y}]}`},
		{`{"request":{"url":"http://h/p?a=1","query_string":[["k","v"],["secret","s"]],"query_string":null,"headers":[["Authorization","b"]]}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra= req={Method: URL:http://h/p Query:a=1 Headers:[{Key:Authorization Value:[Filtered]}]}`},
		{`{"request":{"url":"%zz?x=1","query_string":5,"headers":"h"},"request":"r"}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra= req={Method: URL:%zz Query: Headers:[]}`},
		{`{"request":{"headers":null}}`,
			`<nil> level=error release= sdk= msg="" fp=[] trace=/ svc=1 grade=0 ts=1000000000 tags=[] modules=[] ctx= extra= req={Method: URL: Query: Headers:[]}`},
		{`{"event_id":"not-hex"}`,
			`event: event_id "not-hex" is not a UUID (32 hex digits) level= release= sdk= msg="" fp=[] trace=/ svc= grade=0 ts=0 tags=[] modules=[] ctx= extra=`},
	} {
		d, err := Convert([]byte(c.payload), "1", "0123456789abcdef0123456789abcdef", time.Unix(1, 0))
		if got := fmt.Sprint(err) + " " + dumpSummary(d); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.payload, got, c.want)
		}
	}
}

// dumpSummary writes most of a Dump on one line.
func dumpSummary(d model.Dump) string {
	var b strings.Builder
	fmt.Fprintf(&b, "level=%s release=%s sdk=%s msg=%q fp=%q trace=%s/%s svc=%s grade=%d ts=%d", d.Level, d.Release, d.SDK, d.Message, d.Fingerprint, d.TraceID, d.SpanID, d.Service, d.Grade, d.Timestamp)
	for _, e := range d.Exceptions {
		fmt.Fprintf(&b, " ex{%s %s %s %v %d}", e.Type, e.Value, e.Mechanism, e.Handled != nil && *e.Handled, len(e.Frames))
	}
	for _, th := range d.Threads {
		fmt.Fprintf(&b, " th{%s %v %v %v}", th.ID, th.Crashed, th.Current, th.Frames)
	}
	fmt.Fprintf(&b, " tags=%v modules=%v ctx=%s extra=%s", d.Tags, d.Modules, d.Contexts, d.Extra)
	if d.Request != nil {
		fmt.Fprintf(&b, " req=%+v", *d.Request)
	}
	return b.String()
}
