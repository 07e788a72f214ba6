package logsjson

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

const now = int64(1700000000000000000)

func TestDecodeGood(t *testing.T) {
	f := func(body string, want []model.LogRecord) {
		t.Helper()
		var d Decoder
		got, errs, bad := d.Decode(nil, []byte(body), now)
		if bad != 0 {
			t.Fatalf("Decode(%q): unexpected errors %v", body, errs)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%q):\ngot  %+v\nwant %+v", body, got, want)
		}
	}
	full := model.LogRecord{
		Timestamp: 1714564800000000000, ObservedTimestamp: now, Service: "api", Level: "warn", Env: "prod",
		Host: "web-1", Grade: 2, Source: "http", Message: "slow", TraceID: "0af7651916cd43dd8448eb211c80319c",
		SpanID: "b7ad6b7169203331", Attributes: []model.Attr{{Key: "user", Value: "42"}, {Key: "ok", Value: "true"}},
	}
	f(`{"timestamp":"2024-05-01T12:00:00Z","service":"api","level":"WARNING","message":"slow","env":"prod","host":"web-1","grade":2,`+
		`"trace_id":"0AF7651916CD43DD8448EB211C80319C","span_id":"b7ad6b7169203331","attributes":{"user":42,"ok":true}}`, []model.LogRecord{full})
	minimal := model.LogRecord{ObservedTimestamp: now, Service: DefaultService, Source: "http", Message: "hi"}
	f(`{"message":"hi"}`, []model.LogRecord{minimal})
	f("\n{\"message\":\"hi\"}\r\n\n{\"message\":\"hi\"}", []model.LogRecord{minimal, minimal})
	f(` [{"message":"hi"},{"message":"hi"}] `, []model.LogRecord{minimal, minimal})
	withNs := minimal
	withNs.Timestamp = 1714564800000000001
	f(`{"message":"hi","timestamp":1714564800000000001}`, []model.LogRecord{withNs})
	f(`{"message":"hi","timestamp":"1714564800000000001"}`, []model.LogRecord{withNs})
	extra := minimal
	extra.Attributes = []model.Attr{{Key: "region", Value: "eu"}, {Key: "tags", Value: `["a"]`}}
	f(`{"message":"hi","region":"eu","tags":["a"]}`, []model.LogRecord{extra})
	f("", nil)
}

func TestDecodeBad(t *testing.T) {
	f := func(body string, wantBad int, wantErr string) {
		t.Helper()
		var d Decoder
		_, errs, bad := d.Decode(nil, []byte(body), now)
		if bad != wantBad {
			t.Errorf("Decode(%q): got %d bad records; want %d", body, bad, wantBad)
		}
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		if got := strings.Join(msgs, "; "); !strings.Contains(got, wantErr) {
			t.Errorf("Decode(%q): got errors %q; want one containing %q", body, got, wantErr)
		}
	}
	f(`{"level":"info"}`, 1, `line 1: field "message": required field is missing`)
	f("{\"message\":\"a\"}\n{\"message\":\"b\"", 1, `line 2: invalid JSON`)
	f(`{"message":123}`, 1, `line 1: field "message": want a string, got number`)
	f(`{"message":"x","timestamp":"yesterday"}`, 1, `line 1: field "timestamp": cannot parse "yesterday" as RFC 3339`)
	f(`{"message":"x","grade":7}`, 1, `field "grade": want an integer from 1 to 4, got 7`)
	f(`{"message":"x","trace_id":"xyz"}`, 1, `field "trace_id": want 32 or 16 hex digits, got "xyz"`)
	f(`{"message":"x","attributes":[1]}`, 1, `field "attributes": want an object`)
	f("{\"message\":\"\xff\xfe\"}", 1, `line 1: not valid UTF-8`)
	f("\x00\x01\x02garbage", 1, `line 1: invalid JSON`)
	f(`[{"message":"a"},{"nomsg":1},3]`, 2, `item 2: field "message": required field is missing; item 3: want a JSON object, got number`)
	f(`[{"message":"a"`, 1, `item 1: invalid JSON array`)
	f(`"just a string"`, 1, `line 1: want a JSON object, got string`)
}

func TestMaxErrors(t *testing.T) {
	d := Decoder{MaxErrors: 3}
	body := strings.Repeat("{}\n", 10)
	_, errs, bad := d.Decode(nil, []byte(body), now)
	if len(errs) != 3 || bad != 10 {
		t.Errorf("got %d errors and %d bad; want 3 and 10", len(errs), bad)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"message":"hi","level":"info","grade":1,"attributes":{"a":"b"}}`))
	f.Add([]byte("{\"message\":\"a\"}\n{\"message\":\"b\"}\n"))
	f.Add([]byte(`[{"message":"a","timestamp":"2024-05-01T12:00:00Z"}]`))
	f.Add([]byte(`{"message":"x","trace_id":"0af7651916cd43dd8448eb211c80319c"}`))
	f.Add([]byte("\xff\x00{"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var d Decoder
		recs, errs, bad := d.Decode(nil, body, now)
		if bad < len(errs) {
			t.Fatalf("bad %d < errors %d", bad, len(errs))
		}
		for _, r := range recs {
			if r.Service == "" || r.ObservedTimestamp != now || r.Source != "http" {
				t.Fatalf("record without defaults: %+v", r)
			}
		}
	})
}

func BenchmarkDecodeNDJSON(b *testing.B) {
	line := `{"timestamp":"2024-05-01T12:00:00.123456789Z","service":"checkout","level":"info","host":"web-3","message":"GET /api/v1/cart/8812 200 in 12.3ms user=1234 session=abcdef0123456789 region=eu-west-1 build=2024.05.01"}` + "\n"
	body := []byte(strings.Repeat(line, 1000))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var d Decoder
	var recs []model.LogRecord
	for b.Loop() {
		recs, _, _ = d.Decode(recs[:0], body, now)
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "lines/s")
}
