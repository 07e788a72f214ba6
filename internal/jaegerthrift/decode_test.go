package jaegerthrift

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/agent"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"

	"github.com/vigilhq/vigil/internal/model"
)

func strTag(k, v string) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_STRING, VStr: &v}
}
func boolTag(k string, v bool) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_BOOL, VBool: &v}
}
func longTag(k string, v int64) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_LONG, VLong: &v}
}
func doubleTag(k string, v float64) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_DOUBLE, VDouble: &v}
}
func binTag(k string, v []byte) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_BINARY, VBinary: v}
}
func i64(v int64) *int64 { return &v }

// testBatch has every tag type, logs, references of both kinds, a 128-bit
// trace id with the high bit set, and process tags.
func testBatch() *jaeger.Batch {
	const hi, lo = -0x0123456789abcdef, 0x1122334455667788
	return &jaeger.Batch{
		Process: &jaeger.Process{
			ServiceName: "checkout",
			Tags: []*jaeger.Tag{
				strTag("hostname", "web-1"),
				strTag("jaeger.version", "Go-2.30.0"),
				strTag("ip", "10.0.0.7"),
			},
		},
		SeqNo: i64(7),
		Spans: []*jaeger.Span{
			{
				TraceIdLow: lo, TraceIdHigh: hi, SpanId: 0x0a, ParentSpanId: 0,
				OperationName: "GET /cart", Flags: 1,
				StartTime: 1_700_000_000_123_456, Duration: 2_500,
				Tags: []*jaeger.Tag{
					strTag("span.kind", "server"),
					strTag("http.method", "GET"),
					boolTag("cached", true),
					longTag("http.status_code", 200),
					doubleTag("ratio", 0.25),
					binTag("payload", []byte{0, 1, 0xff}),
				},
				Logs: []*jaeger.Log{
					{Timestamp: 1_700_000_000_124_000, Fields: []*jaeger.Tag{strTag("event", "cache miss"), longTag("retries", 2)}},
					{Timestamp: 1_700_000_000_125_000, Fields: []*jaeger.Tag{strTag("message", "no event field")}},
				},
			},
			{
				TraceIdLow: lo, TraceIdHigh: hi, SpanId: 0x0b, ParentSpanId: 0x0a,
				OperationName: "SELECT", StartTime: 1_700_000_000_124_000, Duration: 1_000,
				References: []*jaeger.SpanRef{
					{RefType: jaeger.SpanRefType_FOLLOWS_FROM, TraceIdLow: 99, TraceIdHigh: 0, SpanId: 0x77},
				},
				Tags: []*jaeger.Tag{
					strTag("span.kind", "client"),
					boolTag("error", true),
					strTag("otel.status_description", "timeout"),
				},
			},
			{
				TraceIdLow: lo, TraceIdHigh: hi, SpanId: 0x0c,
				OperationName: "async", StartTime: 1_700_000_000_126_000, Duration: 10,
				References: []*jaeger.SpanRef{
					{RefType: jaeger.SpanRefType_FOLLOWS_FROM, TraceIdLow: lo, TraceIdHigh: hi, SpanId: 0x0a},
				},
			},
		},
	}
}

func wantSpans() []model.Span {
	tid := model.TraceID{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x11, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	proc := []model.TypedAttr{
		{Key: "jaeger.version", Type: model.AttrString, Str: "Go-2.30.0"},
		{Key: "ip", Type: model.AttrString, Str: "10.0.0.7"},
	}
	sid := func(b byte) model.SpanID { return model.SpanID{7: b} }
	return []model.Span{
		{
			TraceID: tid, SpanID: sid(0x0a), Name: "GET /cart", Kind: model.SpanKindServer,
			StartTime: 1_700_000_000_123_456_000, Duration: 2_500_000, Flags: 1,
			Service: "checkout", Host: "web-1", Process: proc,
			Attributes: []model.TypedAttr{
				{Key: "http.method", Type: model.AttrString, Str: "GET"},
				{Key: "cached", Type: model.AttrBool, Int: 1},
				{Key: "http.status_code", Type: model.AttrInt64, Int: 200},
				{Key: "ratio", Type: model.AttrFloat64, Float: 0.25},
				{Key: "payload", Type: model.AttrBinary, Str: "\x00\x01\xff"},
			},
			Events: []model.SpanEvent{
				{Time: 1_700_000_000_124_000_000, Name: "cache miss", Attributes: []model.TypedAttr{{Key: "retries", Type: model.AttrInt64, Int: 2}}},
				{Time: 1_700_000_000_125_000_000, Attributes: []model.TypedAttr{{Key: "message", Type: model.AttrString, Str: "no event field"}}},
			},
		},
		{
			TraceID: tid, SpanID: sid(0x0b), ParentSpanID: sid(0x0a), Name: "SELECT", Kind: model.SpanKindClient,
			StartTime: 1_700_000_000_124_000_000, Duration: 1_000_000,
			Service: "checkout", Host: "web-1", Process: proc,
			References: []model.SpanRef{
				{Type: model.RefChildOf, TraceID: tid, SpanID: sid(0x0a)},
				{Type: model.RefFollowsFrom, TraceID: model.TraceID{15: 99}, SpanID: sid(0x77)},
			},
			StatusCode: 2, StatusMessage: "timeout",
		},
		{
			TraceID: tid, SpanID: sid(0x0c), ParentSpanID: sid(0x0a), Name: "async",
			StartTime: 1_700_000_000_126_000_000, Duration: 10_000,
			Service: "checkout", Host: "web-1", Process: proc,
			References: []model.SpanRef{{Type: model.RefFollowsFrom, TraceID: tid, SpanID: sid(0x0a)}},
		},
	}
}

// emitBatchMessage serializes b as the agent client does: an emitBatch
// call message in the given protocol.
func emitBatchMessage(t testing.TB, b *jaeger.Batch, compact bool) []byte {
	t.Helper()
	buf := thrift.NewTMemoryBuffer()
	var p thrift.TProtocol = thrift.NewTBinaryProtocolConf(buf, nil)
	if compact {
		p = thrift.NewTCompactProtocolConf(buf, nil)
	}
	if err := agent.NewAgentClientProtocol(buf, p, p).EmitBatch(context.Background(), b); err != nil {
		t.Fatalf("cannot encode emitBatch: %v", err)
	}
	return buf.Bytes()
}

func batchBinary(t testing.TB, b *jaeger.Batch) []byte {
	t.Helper()
	out, err := thrift.NewTSerializer().Write(context.Background(), b)
	if err != nil {
		t.Fatalf("cannot encode Batch: %v", err)
	}
	return out
}

func TestDecodeRoundTrip(t *testing.T) {
	f := func(name string, decode func([]byte) ([]model.Span, error), in []byte) {
		t.Helper()
		got, err := decode(in)
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", name, err)
		}
		want := wantSpans()
		if len(got) != len(want) {
			t.Fatalf("%s: got %d spans; want %d", name, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("%s: span %d:\ngot  %+v\nwant %+v", name, i, got[i], want[i])
			}
		}
	}
	f("compact", DecodeCompactDatagram, emitBatchMessage(t, testBatch(), true))
	f("binary", DecodeBinaryDatagram, emitBatchMessage(t, testBatch(), false))
	f("body", DecodeBatchBinary, batchBinary(t, testBatch()))
}

func TestDecodeErrors(t *testing.T) {
	f := func(name string, decode func([]byte) ([]model.Span, error), in []byte, want string) {
		t.Helper()
		spans, err := decode(in)
		if err == nil {
			t.Fatalf("%s: got %d spans and no error; want error containing %q", name, len(spans), want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %q; want it to contain %q", name, err, want)
		}
		if spans != nil {
			t.Errorf("%s: got %d spans with an error; want none", name, len(spans))
		}
	}
	compact := emitBatchMessage(t, testBatch(), true)
	binary := emitBatchMessage(t, testBatch(), false)
	body := batchBinary(t, testBatch())

	f("empty", DecodeCompactDatagram, nil, "compact datagram of 0 bytes: cannot read message header")
	f("truncated compact", DecodeCompactDatagram, compact[:len(compact)/2], "cannot decode emitBatch arguments")
	f("truncated binary", DecodeBinaryDatagram, binary[:len(binary)-3], "binary datagram of")
	f("truncated body", DecodeBatchBinary, body[:len(body)-1], "cannot decode Batch")
	f("binary to compact port", DecodeCompactDatagram, binary, "compact datagram")
	f("compact to binary port", DecodeBinaryDatagram, compact, "binary datagram")
	f("too large datagram", DecodeCompactDatagram, make([]byte, MaxDatagramSize+1), "input too large")
	f("too large body", DecodeBatchBinary, make([]byte, MaxBodySize+1), "input too large")

	// Another agent method.
	buf := thrift.NewTMemoryBuffer()
	p := thrift.NewTCompactProtocolConf(buf, nil)
	if err := agent.NewAgentClientProtocol(buf, p, p).EmitZipkinBatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	f("zipkin", DecodeCompactDatagram, buf.Bytes(), `method "emitZipkinBatch" is not supported`)

	// A Batch without its required process.
	noProc := batchBinary(t, &jaeger.Batch{Spans: []*jaeger.Span{{OperationName: "x"}}})
	f("no process", DecodeBatchBinary, noProc, "Required field")

	// A list header claiming 2^31-1 spans in a few bytes must fail, not
	// allocate.
	hostile := []byte{
		0x0c, 0x00, 0x01, // field 1 Process: struct
		0x0b, 0x00, 0x01, 0, 0, 0, 1, 'a', 0, // serviceName "a", stop
		0x0f, 0x00, 0x02, 0x0c, 0x7f, 0xff, 0xff, 0xff, // field 2 spans: list<struct> of 2^31-1
	}
	f("hostile list size", DecodeBatchBinary, hostile, "size")

	if _, err := DecodeCompactDatagram(make([]byte, MaxDatagramSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v; want ErrTooLarge", err)
	}
}

func TestKindAndStatus(t *testing.T) {
	type want struct {
		kind  model.SpanKind
		code  uint8
		msg   string
		attrs []string // keys left
	}
	f := func(name string, tags []*jaeger.Tag, w want) {
		t.Helper()
		b := &jaeger.Batch{Process: &jaeger.Process{ServiceName: "s"}, Spans: []*jaeger.Span{{SpanId: 1, Tags: tags}}}
		spans, err := DecodeBatchBinary(batchBinary(t, b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := spans[0]
		var keys []string
		for _, a := range s.Attributes {
			keys = append(keys, a.Key)
		}
		if s.Kind != w.kind || s.StatusCode != w.code || s.StatusMessage != w.msg || !reflect.DeepEqual(keys, w.attrs) {
			t.Errorf("%s: got kind %d, status %d %q, attributes %q; want kind %d, status %d %q, attributes %q",
				name, s.Kind, s.StatusCode, s.StatusMessage, keys, w.kind, w.code, w.msg, w.attrs)
		}
	}
	f("no tags", nil, want{})
	f("producer", []*jaeger.Tag{strTag("span.kind", "producer")}, want{kind: model.SpanKindProducer})
	f("unknown kind dropped", []*jaeger.Tag{strTag("span.kind", "weird"), strTag("a", "b")}, want{attrs: []string{"a"}})
	f("error true", []*jaeger.Tag{boolTag("error", true)}, want{code: 2})
	f("error false kept", []*jaeger.Tag{boolTag("error", false)}, want{attrs: []string{"error"}})
	f("error string kept", []*jaeger.Tag{strTag("error", "true")}, want{attrs: []string{"error"}})
	f("error with http message", []*jaeger.Tag{boolTag("error", true), strTag("http.status_message", "Bad Gateway")},
		want{code: 2, msg: "Bad Gateway", attrs: []string{"http.status_message"}})
	f("otel ok", []*jaeger.Tag{strTag("otel.status_code", "OK")}, want{code: 1})
	f("otel error with description", []*jaeger.Tag{strTag("otel.status_code", "ERROR"), strTag("otel.status_description", "boom")},
		want{code: 2, msg: "boom"})
	f("error wins over otel ok", []*jaeger.Tag{strTag("otel.status_code", "OK"), boolTag("error", true)}, want{code: 2})
	f("http 500", []*jaeger.Tag{longTag("http.status_code", 500)}, want{code: 2, attrs: []string{"http.status_code"}})
	f("http 404 server", []*jaeger.Tag{strTag("span.kind", "server"), longTag("http.status_code", 404)},
		want{kind: model.SpanKindServer, attrs: []string{"http.status_code"}})
	f("http 404 client", []*jaeger.Tag{strTag("span.kind", "client"), strTag("http.status_code", "404")},
		want{kind: model.SpanKindClient, code: 2, attrs: []string{"http.status_code"}})
	f("http 200", []*jaeger.Tag{longTag("http.status_code", 200)}, want{attrs: []string{"http.status_code"}})
}

func TestParentFromReferences(t *testing.T) {
	b := &jaeger.Batch{Process: &jaeger.Process{ServiceName: "s"}, Spans: []*jaeger.Span{{
		TraceIdLow: 1, SpanId: 3,
		References: []*jaeger.SpanRef{
			{RefType: jaeger.SpanRefType_CHILD_OF, TraceIdLow: 2, SpanId: 9}, // other trace: not a parent
			{RefType: jaeger.SpanRefType_FOLLOWS_FROM, TraceIdLow: 1, SpanId: 4},
			{RefType: jaeger.SpanRefType_CHILD_OF, TraceIdLow: 1, SpanId: 5},
		},
	}}}
	spans, err := DecodeBatchBinary(batchBinary(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spans[0].ParentSpanID, (model.SpanID{7: 5}); got != want {
		t.Errorf("got parent %s; want %s (the CHILD_OF reference in the same trace)", got, want)
	}
	if got := len(spans[0].References); got != 3 {
		t.Errorf("got %d references; want the 3 sent", got)
	}
}

func fuzzCheck(t *testing.T, decode func([]byte) ([]model.Span, error), pkt []byte) {
	spans, err := decode(pkt)
	if err != nil && spans != nil {
		t.Fatalf("got %d spans with error %v", len(spans), err)
	}
	// No span can take less than one byte on the wire.
	if len(spans) > len(pkt) {
		t.Fatalf("got %d spans from %d bytes", len(spans), len(pkt))
	}
}

func FuzzDecodeCompactDatagram(f *testing.F) {
	f.Add(emitBatchMessage(f, testBatch(), true))
	f.Add([]byte{0x82, 0x21, 0x01, 0x09, 'e', 'm', 'i', 't', 'B', 'a', 't', 'c', 'h'})
	f.Fuzz(func(t *testing.T, pkt []byte) { fuzzCheck(t, DecodeCompactDatagram, pkt) })
}

func FuzzDecodeBinaryDatagram(f *testing.F) {
	f.Add(emitBatchMessage(f, testBatch(), false))
	f.Add(batchBinary(f, testBatch()))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fuzzCheck(t, DecodeBinaryDatagram, pkt)
		fuzzCheck(t, DecodeBatchBinary, pkt)
	})
}

func benchBatch() *jaeger.Batch {
	b := testBatch()
	base := b.Spans
	for len(b.Spans) < 60 {
		for _, s := range base {
			c := *s
			c.SpanId = int64(len(b.Spans) + 1)
			b.Spans = append(b.Spans, &c)
		}
	}
	return b
}

func benchmarkDecode(b *testing.B, decode func([]byte) ([]model.Span, error), pkt []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	n := 0
	for b.Loop() {
		spans, err := decode(pkt)
		if err != nil {
			b.Fatal(err)
		}
		n += len(spans)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "spans/s")
}

func BenchmarkDecodeCompactDatagram(b *testing.B) {
	benchmarkDecode(b, DecodeCompactDatagram, emitBatchMessage(b, benchBatch(), true))
}

func BenchmarkDecodeBinaryDatagram(b *testing.B) {
	benchmarkDecode(b, DecodeBinaryDatagram, emitBatchMessage(b, benchBatch(), false))
}

func TestUnknownTagType(t *testing.T) {
	v := "x"
	b := &jaeger.Batch{Process: &jaeger.Process{ServiceName: "s"}, Spans: []*jaeger.Span{
		{SpanId: 1, Tags: []*jaeger.Tag{{Key: "odd", VType: jaeger.TagType(9), VStr: &v}}},
	}}
	spans, err := DecodeBatchBinary(batchBinary(t, b))
	if err != nil {
		t.Fatal(err)
	}
	s := spans[0]
	if len(s.Attributes) != 1 || s.Attributes[0].Type != model.AttrString || !strings.HasPrefix(s.Attributes[0].Str, "<Unknown Jaeger TagType") {
		t.Errorf("got attributes %+v; want odd as an <Unknown Jaeger TagType …> string", s.Attributes)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], `tag "odd" has unknown type 9`) {
		t.Errorf("got warnings %q; want one naming tag odd", s.Warnings)
	}
}
