package lokipush

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"

	"github.com/vigilhq/vigil/internal/model"
)

const now = int64(1_800_000_000_000_000_000)

func decode(t *testing.T, body []byte, f Format) (Result, error) {
	t.Helper()
	d := &Decoder{Options: Options{MaxDecodedBytes: 1 << 20, MaxLineBytes: 64}}
	return d.Decode(nil, body, f, now)
}

// The same push, as Promtail sends it in protobuf and as a script sends it
// in JSON, gives the same records.
func TestDecodeProtobufAndJSON(t *testing.T) {
	pb := snappyRequest(
		pbStream{labels: `{job="varlogs", filename="/var/log/api.log", env="prod", hostname="web-1", level="WARNING"}`, entries: []pbEntry{
			{ts: 1_700_000_000_123_456_789, line: "GET /users 200"},
			// Out of order within the stream: Loki 3 accepts it, and so do we.
			{ts: 1_600_000_000_000_000_000, line: "older line", metadata: [][2]string{
				{"trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736"}, {"span_id", "00f067aa0ba902b7"}, {"user_id", "42"},
			}},
		}},
		pbStream{labels: `{service_name="checkout", app="shop"}`, entries: []pbEntry{
			{ts: 1_700_000_001_000_000_000, line: "paid", metadata: [][2]string{{"detected_level", "error"}, {"trace_id", "not-hex"}}},
		}},
	)
	js := []byte(`{"streams":[
	  {"stream":{"job":"varlogs","filename":"/var/log/api.log","env":"prod","hostname":"web-1","level":"WARNING"},
	   "values":[["1700000000123456789","GET /users 200"],
	             ["1600000000000000000","older line",{"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","span_id":"00f067aa0ba902b7","user_id":"42"}]]},
	  {"stream":{"service_name":"checkout","app":"shop"},
	   "values":[["1700000001000000000","paid",{"detected_level":"error","trace_id":"not-hex"}]]}]}`)

	want := []model.LogRecord{
		{Timestamp: 1_700_000_000_123_456_789, Service: "varlogs", Level: "warn", Env: "prod", Host: "web-1", Message: "GET /users 200",
			Attributes: []model.Attr{{Key: "filename", Value: "/var/log/api.log"}, {Key: "job", Value: "varlogs"}}},
		{Timestamp: 1_600_000_000_000_000_000, Service: "varlogs", Level: "warn", Env: "prod", Host: "web-1", Message: "older line",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
			Attributes: []model.Attr{{Key: "filename", Value: "/var/log/api.log"}, {Key: "job", Value: "varlogs"}, {Key: "user_id", Value: "42"}}},
		{Timestamp: 1_700_000_001_000_000_000, Service: "checkout", Level: "error", Message: "paid",
			Attributes: []model.Attr{{Key: "app", Value: "shop"}, {Key: "trace_id", Value: "not-hex"}}},
	}
	for i := range want {
		want[i].ObservedTimestamp, want[i].Source = now, "loki"
	}
	for _, tc := range []struct {
		name string
		body []byte
		f    Format
	}{{"protobuf", pb, Protobuf}, {"json", js, JSON}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := decode(t, tc.body, tc.f)
			if err != nil || res.Err != nil || res.Invalid != 0 {
				t.Fatalf("got err %v, entry errors %v (%d)", err, res.Err, res.Invalid)
			}
			got := res.Records
			for i := range got { // JSON labels arrive sorted, protobuf ones as sent
				sortAttrs(got[i].Attributes)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func sortAttrs(as []model.Attr) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j].Key < as[j-1].Key; j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

// Which label becomes the record's service, level, env and host, and what
// stays an attribute.
func TestStreamLabels(t *testing.T) {
	f := func(labels, service, level, env, host string, grade int, attrs string) {
		t.Helper()
		res, err := decode(t, snappyRequest(pbStream{labels: labels, entries: []pbEntry{{ts: 1, line: "x"}}}), Protobuf)
		if err != nil || res.Err != nil || len(res.Records) != 1 {
			t.Fatalf("%s: got %v %v %d records", labels, err, res.Err, len(res.Records))
		}
		r := res.Records[0]
		var as []string
		for _, a := range r.Attributes {
			as = append(as, a.Key+"="+a.Value)
		}
		if r.Service != service || r.Level != level || r.Env != env || r.Host != host || r.Grade != grade || strings.Join(as, ",") != attrs {
			t.Errorf("%s:\ngot  service=%q level=%q env=%q host=%q grade=%d attrs=%q\nwant service=%q level=%q env=%q host=%q grade=%d attrs=%q",
				labels, r.Service, r.Level, r.Env, r.Host, r.Grade, strings.Join(as, ","), service, level, env, host, grade, attrs)
		}
	}
	f(`{}`, "unknown_service", "", "", "", 0, "")
	f(`{service_name="api", service="other", job="j"}`, "api", "", "", "", 0, "service=other,job=j")
	f(`{service="api"}`, "api", "", "", "", 0, "")
	f(`{job="varlogs", container="c"}`, "c", "", "", "", 0, "job=varlogs,container=c")
	f(`{k8s_job_name="batch", namespace="ns"}`, "batch", "", "", "", 0, "k8s_job_name=batch,namespace=ns")
	f(`{detected_level="ERR", level=""}`, "unknown_service", "error", "", "", 0, "")
	f(`{level="info", detected_level="debug"}`, "unknown_service", "info", "", "", 0, "detected_level=debug")
	f(`{deployment_environment="staging", host_name="h1", grade="2"}`, "unknown_service", "", "staging", "h1", 2, "")
	f(`{env="prod", environment="x", grade="9"}`, "unknown_service", "", "prod", "", 0, "environment=x,grade=9")
}

func TestParseLabels(t *testing.T) {
	f := func(in, want, wantErr string) {
		t.Helper()
		ls, err := ParseLabels(nil, in)
		if wantErr != "" {
			if err == nil || err.Error() != wantErr {
				t.Errorf("ParseLabels(%q): got error %v; want %q", in, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseLabels(%q): %v", in, err)
		}
		if got := model.Labels(ls).String(); got != want {
			t.Errorf("ParseLabels(%q) = %s; want %s", in, got, want)
		}
	}
	f(`{a="1", b="2"}`, `{a="1", b="2"}`, "")
	f(` { a = "1" , } `, `{a="1"}`, "")
	f(`{a="x\"y\n", b='single', c=`+"`raw\\n`"+`, "k8s.io/name"="n"}`, `{a="x\"y\n", b="single", c="raw\\n", k8s.io/name="n"}`, "")
	f(`{a="", b="2"}`, `{b="2"}`, "")
	f(`{}`, `{}`, "")
	f(``, "", `1:1: parse error: unexpected end of input, expected "{"`)
	f(`{a=1}`, "", `1:4: parse error: unexpected '1', expected a quoted string`)
	f(`{a="1" b="2"}`, "", `1:8: parse error: unexpected 'b' in label set, expected "," or "}"`)
	f(`{a="1"`, "", `1:7: parse error: unexpected end of input in label set, expected "," or "}"`)
	f(`{a="1}`, "", `1:4: parse error: unterminated quoted string`)
	f(`{a="1", a="2"}`, "", `duplicate label name: "a"`)
	f(`{a="", a="2"}`, "", `duplicate label name: "a"`)
	f(`{1a="1"}`, "", `1:2: parse error: unexpected '1', expected a label name`)
	f(`{a="\q"}`, "", `1:5: parse error: invalid escape in quoted string: invalid syntax`)
	f(`{a="1"} x`, "", `1:9: parse error: unexpected 'x' after the label set`)
}

// Bad input: each case names the problem as Loki does, where Loki has a
// message for it.
func TestDecodeErrors(t *testing.T) {
	valid := pbRequest(pbStream{labels: `{a="b"}`, entries: []pbEntry{{ts: 1, line: "x"}}})
	f := func(name string, body []byte, format Format, want string) {
		t.Helper()
		_, err := decode(t, body, format)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v; want one containing %q", name, err, want)
		}
	}
	f("not snappy", []byte("this is not snappy"), Protobuf, "snappy: corrupt input")
	f("snappy of garbage", snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0x01}), Protobuf, "proto: PushRequest: field 1: unexpected EOF")
	f("truncated protobuf", snappy.Encode(nil, valid[:len(valid)-9]), Protobuf, "unexpected EOF")
	f("wrong wire type", snappy.Encode(nil, []byte{0x08, 0x01}), Protobuf, "proto: PushRequest: wrong wireType = 0 for field Streams")
	// A stream {labels "{}", entries [{line as a varint}]}.
	f("wrong wire type deep inside", snappy.Encode(nil, []byte{0x0a, 0x08, 0x0a, 0x02, '{', '}', 0x12, 0x02, 0x10, 0x01}), Protobuf,
		"proto: PushRequest.Streams[0].Entries[0]: wrong wireType = 0 for field Line")
	f("illegal tag", snappy.Encode(nil, []byte{0x00}), Protobuf, "proto: PushRequest: invalid field number")
	f("uncompressed protobuf", valid, Protobuf, "snappy:")
	f("no streams", snappyRequest(), Protobuf, ErrNoStreams.Error())
	f("no streams in JSON", []byte(`{"streams":[]}`), JSON, ErrNoStreams.Error())
	f("JSON syntax", []byte(`{"streams":[`), JSON, "cannot parse JSON body")
	f("JSON streams type", []byte(`{"streams":{}}`), JSON, `field "streams": want an array, got object`)
	f("JSON timestamp", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["yesterday","x"]]}]}`), JSON, `streams[0].values[0]: timestamp: cannot parse "yesterday" as Unix nanoseconds`)
	f("JSON line type", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1",{}]]}]}`), JSON, `streams[0].values[0]: line: want a string, got object`)
	f("JSON entry arity", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}`), JSON, `want 2 or 3 values`)
	f("JSON metadata type", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"n":1}]]}]}`), JSON, `structured metadata "n": want a string, got number`)
	f("JSON label type", []byte(`{"streams":[{"stream":{"a":["b"]},"values":[["1","x"]]}]}`), JSON, `streams[0].stream: label "a": want a string, got array`)

	var tl *TooLargeError
	big := snappyRequest(pbStream{labels: `{a="b"}`, entries: []pbEntry{{ts: 1, line: strings.Repeat("x", 2<<20)}}})
	if _, err := decode(t, big, Protobuf); !errors.As(err, &tl) || tl.Limit != 1<<20 {
		t.Errorf("a body decompressing past the limit: got %v; want a TooLargeError", err)
	}
}

// Entries that fail validation are left out and described, the others
// kept: Loki stores the valid part of a request and answers 400.
func TestDecodeInvalidEntries(t *testing.T) {
	body := snappyRequest(
		pbStream{labels: `{a="ok"}`, entries: []pbEntry{{ts: 1, line: "fine"}, {ts: 2, line: strings.Repeat("x", 65)}, {ts: 3, line: strings.Repeat("y", 65)}}},
		pbStream{labels: `{a=bad}`, entries: []pbEntry{{ts: 4, line: "lost"}}},
		pbStream{labels: ``, entries: []pbEntry{{ts: 5, line: "no labels"}}},
		pbStream{labels: `{a="empty"}`},
	)
	res, err := decode(t, body, Protobuf)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Records[0].Message != "fine" || res.Invalid != 4 {
		t.Fatalf("got %d records, %d invalid; want the one valid line kept and 4 invalid", len(res.Records), res.Invalid)
	}
	want := `2 errors like: max entry size '64' bytes exceeded for stream '{a="ok"}' while adding an entry with length '65' bytes; ` +
		`1 errors like: couldn't parse labels '{a=bad}': 1:4: parse error: unexpected 'b', expected a quoted string; ` +
		`1 errors like: error at least one label pair is required per stream`
	if res.Err == nil || res.Err.Error() != want {
		t.Errorf("got error\n%v\nwant\n%s", res.Err, want)
	}

	// JSON labels appear in messages as Loki writes them.
	res, _ = decode(t, []byte(`{"streams":[{"stream":{"job":"a","k8s.io/app":"b"},"values":[["1","`+strings.Repeat("z", 65)+`"]]}]}`), JSON)
	if want := `max entry size '64' bytes exceeded for stream '{job="a", "k8s.io/app"="b"}' while adding an entry with length '65' bytes`; res.Err == nil || res.Err.Error() != want {
		t.Errorf("got %v; want %s", res.Err, want)
	}

	// One kind of error, once: Loki's message alone.
	res, _ = decode(t, []byte(`{"streams":[{"values":[["1","x"]]}]}`), JSON)
	if res.Err == nil || res.Err.Error() != "error at least one label pair is required per stream" {
		t.Errorf("a JSON stream without labels: got %v", res.Err)
	}
}

// Invalid UTF-8 is stored with replacement characters rather than refused:
// Loki stores any bytes.
func TestDecodeInvalidUTF8(t *testing.T) {
	res, err := decode(t, snappyRequest(pbStream{labels: "{a=\"\xff\"}", entries: []pbEntry{{ts: 1, line: "bad \xfe byte", metadata: [][2]string{{"k", "\xff"}}}}}), Protobuf)
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("got %v, %d records", err, len(res.Records))
	}
	r := res.Records[0]
	if r.Message != "bad \uFFFD byte" || r.Attributes[0].Value != "\uFFFD" || r.Attributes[1].Value != "\uFFFD" {
		t.Errorf("got %+v", r)
	}
}

// A decoder reused for the next request must not leak the previous one.
func TestDecoderReuse(t *testing.T) {
	d := &Decoder{}
	first := snappyRequest(pbStream{labels: `{a="1"}`, entries: []pbEntry{{ts: 1, line: "one", metadata: [][2]string{{"m", "v"}}}, {ts: 2, line: "two"}}})
	second := snappyRequest(pbStream{labels: `{b="2"}`, entries: []pbEntry{{ts: 3, line: "three"}}})
	r1, _ := d.Decode(nil, first, Protobuf, now)
	r2, _ := d.Decode(nil, second, Protobuf, now)
	if len(r1.Records) != 2 || r1.Records[0].Attributes[1].Value != "v" || r1.Records[1].Message != "two" {
		t.Errorf("first request's records changed: %+v", r1.Records)
	}
	if len(r2.Records) != 1 || len(r2.Records[0].Attributes) != 1 || r2.Records[0].Attributes[0].Key != "b" {
		t.Errorf("second request: %+v", r2.Records)
	}
}
