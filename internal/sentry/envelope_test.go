package sentry

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type readItem struct {
	typ     string
	length  int64
	payload string
}

func readAll(t *testing.T, in string, l Limits) (EnvelopeHeader, []readItem, error) {
	t.Helper()
	r, err := NewEnvelopeReader(strings.NewReader(in), l)
	if err != nil {
		return EnvelopeHeader{}, nil, err
	}
	var items []readItem
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), items, nil
		}
		if err != nil {
			return r.Header(), items, err
		}
		items = append(items, readItem{it.Type, it.Length, string(it.Payload)})
	}
}

func TestEnvelopeGood(t *testing.T) {
	f := func(name, in string, want ...readItem) {
		t.Helper()
		_, got, err := readAll(t, in, DefaultLimits())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d items %+v; want %d %+v", name, len(got), got, len(want), want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: item %d: got %+v; want %+v", name, i+1, got[i], want[i])
			}
		}
	}
	ev := `{"message":"m"}`
	f("length", "{}\n{\"type\":\"event\",\"length\":15}\n"+ev+"\n", readItem{"event", 15, ev})
	f("length, no final newline", "{}\n{\"type\":\"event\",\"length\":15}\n"+ev, readItem{"event", 15, ev})
	f("no length", "{}\n{\"type\":\"event\"}\n"+ev+"\n", readItem{"event", 15, ev})
	f("no length, no final newline", "{}\n{\"type\":\"event\"}\n"+ev, readItem{"event", 15, ev})
	f("length with newline inside", "{}\n{\"type\":\"event\",\"length\":4}\na\nb\n", readItem{"event", 4, "a\nb\n"[:4]})
	f("empty payload", "{}\n{\"type\":\"event\",\"length\":0}\n\n", readItem{"event", 0, ""})
	f("skipped types hold no payload", "{}\n{\"type\":\"attachment\",\"length\":3}\nabc\n{\"type\":\"session\"}\n{\"sid\":1}\n{\"type\":\"event\"}\n"+ev+"\n",
		readItem{"attachment", 3, ""}, readItem{"session", 9, ""}, readItem{"event", 15, ev})
	f("header only", "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n")
	f("header without newline", "{}")
	f("blank lines between items", "{}\n\n{\"type\":\"event\"}\n"+ev+"\n\n", readItem{"event", 15, ev})
}

func TestEnvelopeBad(t *testing.T) {
	l := DefaultLimits()
	l.Event, l.Attachment, l.Attachments, l.Sessions = 100, 50, 80, 2
	f := func(name, in, wantErr string, wantLimit bool) {
		t.Helper()
		_, _, err := readAll(t, in, l)
		if err == nil {
			t.Fatalf("%s: no error; want %q", name, wantErr)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: got %q; want it to contain %q", name, err, wantErr)
		}
		if IsLimit(err) != wantLimit {
			t.Errorf("%s: IsLimit = %v; want %v (%v)", name, IsLimit(err), wantLimit, err)
		}
	}
	f("empty", "", "the body is empty", false)
	f("header not JSON", "event\n", "envelope header: not a JSON object", false)
	f("header a list", "[1]\n", "envelope header: not a JSON object", false)
	f("item header not JSON", "{}\n{type:event}\n{}\n", "envelope item 1: header is not a JSON object", false)
	f("no type", "{}\n{\"length\":2}\n{}\n", `envelope item 1: header has no "type"`, false)
	f("truncated payload", "{}\n{\"type\":\"event\",\"length\":50}\n{\"message\":\"m\"}\n", "envelope item 1: truncated: header says length 50 but only 16 bytes follow", false)
	f("truncated after header", "{}\n{\"type\":\"event\",\"length\":5}", "envelope item 1: truncated", false)
	f("length too short", "{}\n{\"type\":\"event\",\"length\":5}\n{\"message\":\"m\"}\n", "envelope item 1: wrong length: header says 5 bytes", false)
	f("negative length", "{}\n{\"type\":\"event\",\"length\":-1}\n{}\n", "negative length -1", false)
	f("length not a number", "{}\n{\"type\":\"event\",\"length\":\"5\"}\n{}\n", "envelope item 1: header is not a JSON object", false)
	f("second item bad", "{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"event\",\"length\":9}\n{}\n", "envelope item 2: truncated", false)
	f("event too large by length", "{}\n{\"type\":\"event\",\"length\":101}\n"+strings.Repeat("x", 101)+"\n", "envelope item 1 (event) of length 101 exceeds Sentry's limit of 100 bytes", true)
	f("event too large, no length", "{}\n{\"type\":\"event\"}\n"+strings.Repeat("x", 101)+"\n", "envelope item 1 (event) exceeds Sentry's limit of 100 bytes", true)
	f("attachment too large", "{}\n{\"type\":\"attachment\",\"length\":51}\n"+strings.Repeat("x", 51)+"\n", "exceeds Sentry's limit of 50 bytes", true)
	f("attachments together", "{}\n{\"type\":\"attachment\",\"length\":50}\n"+strings.Repeat("x", 50)+"\n{\"type\":\"attachment\"}\n"+strings.Repeat("x", 40)+"\n", "attachments together exceeds Sentry's limit of 80 bytes", true)
	f("sessions", "{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"sessions\"}\n{}\n", "session items exceeds Sentry's limit of 2 bytes", true)
	f("header line too long", "{\"x\":\""+strings.Repeat("x", maxHeaderBytes)+"\"}\n", "envelope header exceeds", true)
}

func TestEnvelopeSeeds(t *testing.T) {
	files, _ := filepath.Glob("testdata/envelopes/*.envelope")
	if len(files) < 8 {
		t.Fatalf("got %d seed envelopes; want the captured ones", len(files))
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		h, items, err := readAll(t, string(b), DefaultLimits())
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if len(items) == 0 {
			t.Errorf("%s: no items", file)
		}
		if !strings.Contains(file, "no-length") && len(h.EventID) != 32 {
			t.Errorf("%s: header event_id %q", file, h.EventID)
		}
	}
}
