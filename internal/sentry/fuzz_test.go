package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in %s", pattern)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzEnvelope reads arbitrary bodies as envelopes: the reader must not
// panic, must stay within its limits, and every event item it returns must
// convert or fail with an EventError.
func FuzzEnvelope(f *testing.F) {
	addSeeds(f, "testdata/envelopes/*.envelope")
	f.Add([]byte("{}\n{\"type\":\"event\",\"length\":3}\n{}\n"))
	l := DefaultLimits()
	l.Event, l.Attachment, l.Attachments, l.Sessions = 4096, 1024, 2048, 3
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := NewEnvelopeReader(strings.NewReader(string(body)), l)
		if err != nil {
			checkErr(t, err)
			return
		}
		for i := 0; ; i++ {
			it, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				checkErr(t, err)
				return
			}
			if int64(len(it.Payload)) > l.itemLimit(it.Type) {
				t.Fatalf("item %d of %d bytes passed the limit", i, len(it.Payload))
			}
			if Keeps(it.Type) {
				d, err := Convert(it.Payload, "1", r.Header().EventID, time.Unix(1, 0))
				if err != nil {
					checkErr(t, err)
					continue
				}
				if len(d.EventID) != 32 {
					t.Fatalf("event id %q", d.EventID)
				}
			}
		}
	})
}

// FuzzConvert converts arbitrary event payloads; a converted dump must
// encode as JSON (it goes on the queue) and name its event.
func FuzzConvert(f *testing.F) {
	addSeeds(f, "testdata/events/*.json")
	f.Add([]byte(`{"exception":[{"type":"E","stacktrace":{"frames":[{"lineno":1.5}]}}],"tags":[["a","b"]]}`))
	f.Add([]byte(`{"request":{"url":"http://u:p@h/?token=1","headers":{"Cookie":"x"},"query_string":[["k","v"]]}}`))
	f.Add([]byte(`{"a":[` + strings.Repeat(`[`, 9998) + strings.Repeat(`]`, 9998) + `]}`))
	f.Add([]byte(`{"a":[` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 9999) + `]}`))
	for _, p := range []string{`{"a":1,}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		"{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", `{"a":[1,]}`, `{"a":{,}}`, `{"a":1}}`, `{"a":tru}`, `{"a":1e+5,"b":-0.0E-2}`} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := Convert(payload, "1", "", time.Unix(1, 0))
		// The reader takes exactly the JSON objects that encoding/json
		// takes.
		if p := bytes.TrimSpace(payload); len(p) > 0 && p[0] == '{' {
			if valid, invalid := json.Valid(p), err != nil && strings.HasPrefix(err.Error(), "event: invalid JSON"); valid == invalid {
				t.Fatalf("valid JSON %v, but Convert says %v", valid, err)
			}
		}
		if err != nil {
			checkErr(t, err)
			return
		}
		if len(d.EventID) != 32 {
			t.Fatalf("event id %q", d.EventID)
		}
		if _, err := json.Marshal(d); err != nil {
			t.Fatalf("dump does not encode: %v", err)
		}
		if d.Request != nil {
			for _, h := range d.Request.Headers {
				if Sensitive(h.Key) && h.Value != "" && h.Value != Filtered {
					t.Fatalf("header %s kept its secret", h.Key)
				}
			}
		}
	})
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	var ee *EnvelopeError
	var ev *EventError
	if !errors.As(err, &ee) && !errors.As(err, &ev) && !IsLimit(err) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}
