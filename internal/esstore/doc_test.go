package esstore

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
)

func TestAppendDoc(t *testing.T) {
	f := func(r model.LogRecord, want string) {
		t.Helper()
		got := appendDoc(nil, &r)
		if string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		if !json.Valid(got) {
			t.Errorf("invalid JSON: %s", got)
		}
	}
	id := model.RecordID{0xde, 0xad, 15: 0x01}
	f(model.LogRecord{ID: id, Timestamp: 1709900000123456789, Message: "hi"},
		`{"@timestamp":"2024-03-08T12:13:20.123456789Z","event":{"id":"dead0000000000000000000000000001"},"message":"hi","vigil":{"message_bytes":2,"stream":"[]"}}`)
	f(model.LogRecord{
		ID: id, Timestamp: 1709900000e9, ObservedTimestamp: 1709900001e9,
		Service: "api", Level: "error", Env: "prod", Host: "h1", Grade: 2, Source: "file",
		Message: "a \"q\"\n\x01\xff", TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331",
		Attributes: []model.Attr{{Key: "k", Value: "v1"}, {Key: "log.file.path", Value: "/var/log/a.log"}, {Key: "x.y", Value: ""}, {Key: "k", Value: "v2"}},
		Truncated:  true,
	}, `{"@timestamp":"2024-03-08T12:13:20.000000000Z","event":{"id":"dead0000000000000000000000000001","created":"2024-03-08T12:13:21.000000000Z"},`+
		`"message":"a \"q\"\n\u0001\ufffd","log":{"level":"error","file":{"path":"/var/log/a.log"}},"service":{"name":"api"},"host":{"name":"h1"},`+
		`"trace":{"id":"0af7651916cd43dd8448eb211c80319c"},"span":{"id":"b7ad6b7169203331"},"vigil":{"grade":2,"env":"prod","source":"file","message_bytes":10,"stream":"[\"env\",\"prod\",\"grade\",\"2\",\"host\",\"h1\",\"level\",\"error\",\"service\",\"api\",\"source\",\"file\"]","truncated":true},`+
		`"labels":{"k":["v1","v2"],"x.y":""}}`)
}

func TestHasLongToken(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := hasLongToken(s); got != want {
			t.Errorf("hasLongToken(%d bytes %.20q…) = %v, want %v", len(s), s, got, want)
		}
	}
	f("short", false)
	f(strings.Repeat("ab ", 200), false)
	f(strings.Repeat("a", 250)+" "+strings.Repeat("b", 250), false)
	f(strings.Repeat("a", 251), true)
	f(strings.Repeat("é", 126), true)                                    // 252 bytes
	f(strings.Repeat("a", 200)+"\u3000"+strings.Repeat("a", 200), false) // ideographic space splits
	f(strings.Repeat("a", 200)+"\u00a0"+strings.Repeat("a", 200), true)  // no-break space does not
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x1f\x7f", "\xff\xfe", "é€😀", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, b, err)
		}
		var want strings.Builder // each invalid byte becomes U+FFFD
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			want.WriteRune(r)
			i += n
		}
		if got != want.String() {
			t.Fatalf("%q: round trip gave %q, want %q", s, got, want.String())
		}
	})
}

func TestStreamKey(t *testing.T) {
	for _, ls := range []model.Labels{
		nil,
		{{Name: "env", Value: "prod"}, {Name: "service", Value: "api"}},
		{{Name: "host", Value: `a"b\c,d]`}, {Name: "service", Value: "ü\n\x00"}},
	} {
		got, err := parseStreamKey(appendStreamKey(nil, ls))
		if err != nil || got.String() != ls.String() {
			t.Errorf("%v: got %v, %v", ls, got, err)
		}
	}
	// Invalid UTF-8 is stored as U+FFFD, in the key as in the label field.
	got, err := parseStreamKey(appendStreamKey(nil, model.Labels{{Name: "service", Value: "a\xffb"}}))
	if err != nil || got.Get("service") != "a\ufffdb" {
		t.Errorf("invalid UTF-8: got %v, %v", got, err)
	}
	for _, bad := range []string{"", "{}", `["a"]`, `[1,2]`} {
		if _, err := parseStreamKey([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzParseStreamKey: a vigil.stream value read back from Elasticsearch
// either fails to parse or round-trips.
func FuzzParseStreamKey(f *testing.F) {
	f.Add([]byte(`["env","prod","service","api"]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, k []byte) {
		ls, err := parseStreamKey(k)
		if err != nil {
			return
		}
		again, err := parseStreamKey(appendStreamKey(nil, ls))
		if err != nil || again.String() != ls.String() {
			t.Fatalf("%q: %v, then %v, %v", k, ls, again, err)
		}
	})
}
