package lokipush

import (
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds arbitrary bodies to both decoders; the seed corpus in
// testdata/fuzz/FuzzDecode holds Promtail-like protobuf and JSON pushes.
func FuzzDecode(f *testing.F) {
	f.Add(snappyRequest(pbStream{labels: `{job="a", level="info"}`, entries: []pbEntry{{ts: 1, line: "x", metadata: [][2]string{{"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"}}}}}), false)
	f.Add([]byte(`{"streams":[{"stream":{"app":"a"},"values":[["1","x",{"k":"v"}]]}]}`), true)
	d := &Decoder{Options: Options{MaxDecodedBytes: 1 << 20, MaxLineBytes: 1 << 10}}
	f.Fuzz(func(t *testing.T, body []byte, json bool) {
		format := Protobuf
		if json {
			format = JSON
		}
		res, err := d.Decode(nil, body, format, 1)
		if err != nil {
			if len(res.Records) != 0 {
				t.Fatalf("a failed decode returned %d records", len(res.Records))
			}
			return
		}
		for _, r := range res.Records {
			if r.Service == "" || r.Source != Source || r.ObservedTimestamp != 1 || r.Timestamp < 0 {
				t.Fatalf("bad record %+v", r)
			}
			if !utf8.ValidString(r.Message) || len(r.Message) > 3<<10 {
				t.Fatalf("bad message %q", r.Message)
			}
			for _, a := range r.Attributes {
				if !utf8.ValidString(a.Key) || !utf8.ValidString(a.Value) || a.Key == "" {
					t.Fatalf("bad attribute %+v", a)
				}
			}
		}
		if (res.Invalid > 0) != (res.Err != nil) {
			t.Fatalf("%d invalid entries, error %v", res.Invalid, res.Err)
		}
	})
}
