package model

import (
	"bytes"
	"encoding/json"
	"testing"
)

// dumpOf makes a dump with s, t and n in every kind of field and raw as
// its contexts.
func dumpOf(s, t string, n int64, raw []byte) *Dump {
	yes, no := true, false
	frames := []Frame{{Function: s, Module: t, Filename: s, AbsPath: t, Line: int(n), Column: int(-n), InApp: n%2 == 0}, {}, {Line: 1}}
	d := &Dump{EventID: s, Project: t, Service: s, Grade: int(n % 5), Timestamp: n, Received: -n, Level: t,
		Platform: s, Message: t, Logger: s, Release: t, Dist: s, Environment: t, ServerName: s, Transaction: t,
		TraceID: s, SpanID: t, Fingerprint: []string{s, t, ""},
		Exceptions: []Exception{{Type: s, Value: t, Module: s, Mechanism: t, Handled: &yes, ThreadID: s, Frames: frames},
			{Handled: &no}, {}, {Frames: []Frame{}}},
		Threads: []Thread{{ID: s, Name: t, State: s, Crashed: true, Current: n%2 == 1, Frames: frames}, {}},
		Request: &DumpRequest{Method: s, URL: t, Query: s, Headers: []Attr{{s, t}, {}}},
		Tags:    []Attr{{t, s}}, SDK: s, Modules: []Attr{}, Contexts: raw, Extra: json.RawMessage(` { "a" : "<&>" } `),
		IssueID: t}
	if n%3 == 0 {
		d.Request = &DumpRequest{}
		d.Exceptions, d.Threads, d.Fingerprint, d.Tags, d.Extra = nil, nil, nil, nil, nil
	}
	return d
}

func checkAppendJSON(t *testing.T, d *Dump) {
	t.Helper()
	want, werr := json.Marshal(d)
	got, err := d.AppendJSON(nil)
	if (err != nil) != (werr != nil) {
		t.Fatalf("error %v; json.Marshal: %v", err, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if enc, _ := d.EncodeJSON(); !bytes.Equal(enc, want) {
		t.Fatalf("EncodeJSON %s\nwant %s", enc, want)
	}
}

func TestDumpAppendJSON(t *testing.T) {
	strs := []string{"", "plain", "<a href=\"x\">&amp;</a>", "tab\there\nnl\r\b\f\x00\x1f\x7f", "\xff\xfe bad \xe2\x82",
		"é ü 中文 \u2028 \u2029 😀", `back\slash "quote"`}
	raws := [][]byte{nil, []byte(`{}`), []byte(` { "k" : [ 1 , "<\u2028>" ] } `), []byte(`{"bad"`), []byte("null")}
	for i, s := range strs {
		for j, u := range strs {
			checkAppendJSON(t, dumpOf(s, u, int64(i*7+j-20), raws[(i+j)%len(raws)]))
		}
	}
	checkAppendJSON(t, &Dump{})
}

// FuzzDumpAppendJSON checks that AppendJSON writes what json.Marshal
// writes for any strings, numbers and contexts.
func FuzzDumpAppendJSON(f *testing.F) {
	f.Add("a<b>&c", "\xff\u2028", int64(3), []byte(`{"a": 1}`))
	f.Add("", "x", int64(-1), []byte(`[`))
	f.Fuzz(func(t *testing.T, s, u string, n int64, raw []byte) {
		checkAppendJSON(t, dumpOf(s, u, n, raw))
	})
}
