package otlptraces

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

var (
	tid  = model.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	tid2 = model.TraceID{15: 7}
	sid  = model.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
	pid  = model.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
)

func allTypes(prefix string) []model.TypedAttr {
	return []model.TypedAttr{
		{Key: prefix + "str", Type: model.AttrString, Str: "v"},
		{Key: prefix + "bool.true", Type: model.AttrBool, Int: 1},
		{Key: prefix + "bool.false", Type: model.AttrBool},
		{Key: prefix + "int", Type: model.AttrInt64, Int: -1 << 40},
		{Key: prefix + "float", Type: model.AttrFloat64, Float: 3.25},
		{Key: prefix + "bytes", Type: model.AttrBinary, Str: "\x00\xff\x10"},
		{Key: prefix + "empty", Type: model.AttrString},
	}
}

func TestRoundTrip(t *testing.T) {
	f := func(name string, spans, want []model.Span) {
		t.Helper()
		b, err := Marshal(spans)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Unmarshal(nil, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want == nil {
			want = spans
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip:\ngot  %+v\nwant %+v", name, got, want)
		}
	}
	full := model.Span{
		TraceID: tid, SpanID: sid, ParentSpanID: pid, Name: "GET /cart", Kind: model.SpanKindServer,
		StartTime: 1700000000000000001, Duration: 12_345_678, Flags: 0x301,
		Service: "checkout", Host: "web-1", Env: "prod", Grade: 1,
		Attributes: allTypes("a."),
		Process:    allTypes("p."),
		Events: []model.SpanEvent{
			{Time: 1700000000000000100, Name: "exception", Attributes: allTypes("e.")},
			{Time: 1700000000000000200, Name: "cache miss"},
		},
		References: []model.SpanRef{
			{Type: model.RefChildOf, TraceID: tid, SpanID: pid},
			{Type: model.RefFollowsFrom, TraceID: tid2, SpanID: model.SpanID{9}},
			{Type: model.RefChildOf, TraceID: tid2, SpanID: model.SpanID{10}},
		},
		StatusCode: 2, StatusMessage: "payment declined",
		Warnings: []string{"clock skew adjusted", "second"},
	}
	f("full", []model.Span{full}, nil)

	root := model.Span{TraceID: tid2, SpanID: model.SpanID{1}, Name: "root", StartTime: 5, Duration: 0}
	f("minimal root", []model.Span{root}, nil)

	// A CHILD_OF reference to another trace, without a parent, stays a
	// reference and does not become the parent.
	orphan := root
	orphan.References = []model.SpanRef{{Type: model.RefChildOf, TraceID: tid, SpanID: pid}}
	f("child_of another trace", []model.Span{orphan}, nil)

	// Spans are grouped by resource: the third shares the first's.
	a := full
	a.SpanID = model.SpanID{2}
	b := root
	b.Service, b.Process = "db", []model.TypedAttr{{Key: "ip", Str: "10.0.0.1"}}
	c := b
	c.Process = []model.TypedAttr{{Key: "ip", Str: "10.0.0.2"}} // other process: other resource
	f("grouping", []model.Span{full, b, a, c}, []model.Span{full, a, b, c})
}

func TestUnmarshalJSON(t *testing.T) {
	body := `{"resourceSpans":[{"resource":{"attributes":[
	{"key":"service.name","value":{"stringValue":"checkout"}},
	{"key":"deployment.environment","value":{"stringValue":"staging"}},
	{"key":"vigil.grade","value":{"stringValue":"2"}},
	{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"1"}]}}},
	{"key":"k8s","value":{"kvlistValue":{"values":[{"key":"pod","value":{"stringValue":"p-1"}}]}}}]},
	"scopeSpans":[{"scope":{"name":"io.opentelemetry.http","version":"1.2"},"spans":[{
	"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",
	"name":"POST /pay","kind":3,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000250000000",
	"attributes":[{"key":"http.status_code","value":{"intValue":"503"}}],
	"links":[{"traceId":"5b8efff798038103d269b633813fc60d","spanId":"0000000000000001"}],
	"status":{"code":2,"message":"upstream down"}}]}]}]}`
	got, err := UnmarshalJSON(nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	trace := model.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	link := trace
	link[15] = 0x0d
	parent := model.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73}
	want := []model.Span{{
		TraceID: trace, SpanID: model.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}, ParentSpanID: parent,
		Name: "POST /pay", Kind: model.SpanKindClient, StartTime: 1700000000000000000, Duration: 250_000_000,
		Service: "checkout", Env: "staging", Grade: 2,
		Process: []model.TypedAttr{{Key: "tags", Str: `["a",1]`}, {Key: "k8s", Str: `{"pod":"p-1"}`}},
		Attributes: []model.TypedAttr{
			{Key: "otel.scope.name", Str: "io.opentelemetry.http"}, {Key: "otel.scope.version", Str: "1.2"},
			{Key: "http.status_code", Type: model.AttrInt64, Int: 503},
		},
		References: []model.SpanRef{
			{Type: model.RefChildOf, TraceID: trace, SpanID: parent},
			{Type: model.RefFollowsFrom, TraceID: link, SpanID: model.SpanID{7: 1}},
		},
		StatusCode: 2, StatusMessage: "upstream down",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{`{"resourceSpans":[{`, `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}`} {
		if _, err := UnmarshalJSON(nil, []byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s): got no error", bad)
		}
	}
}

func TestEndBeforeStart(t *testing.T) {
	body := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
	"startTimeUnixNano":"20","endTimeUnixNano":"10"}]}]}]}`
	got, err := UnmarshalJSON(nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Duration != 0 || len(got[0].Warnings) != 1 {
		t.Errorf("got %+v; want one span with duration 0 and a warning", got)
	}
}

func TestUnmarshalAppends(t *testing.T) {
	b, _ := Marshal([]model.Span{{TraceID: tid, SpanID: sid, Process: []model.TypedAttr{{Key: "ip", Str: "x"}}}, {TraceID: tid, SpanID: pid, Process: []model.TypedAttr{{Key: "ip", Str: "x"}}}})
	got, err := Unmarshal(make([]model.Span, 1), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].SpanID != sid || got[2].SpanID != pid {
		t.Fatalf("got %+v; want the zero span then two decoded spans", got)
	}
	got[1].Process[0].Str = "changed"
	if got[2].Process[0].Str != "x" {
		t.Errorf("spans of one resource share their process attributes")
	}
}

func FuzzUnmarshal(f *testing.F) {
	b, _ := Marshal([]model.Span{{TraceID: tid, SpanID: sid, Name: "n", Attributes: allTypes("")}})
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		spans, err := Unmarshal(nil, data)
		if err != nil {
			return
		}
		roundTrip(t, spans)
	})
}

func FuzzUnmarshalJSON(f *testing.F) {
	f.Add([]byte(`{"resourceSpans":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spans, err := UnmarshalJSON(nil, data)
		if err != nil {
			return
		}
		roundTrip(t, spans)
	})
}

// roundTrip checks that decoded spans encode again, and that once
// normalized by one encoding (grouping, duplicate keys) they survive a
// second round trip unchanged (compared as text so that NaNs are equal).
func roundTrip(t *testing.T, spans []model.Span) {
	t.Helper()
	b, err := Marshal(spans)
	if err != nil {
		t.Fatalf("decoded spans do not encode again: %v", err)
	}
	norm, err := Unmarshal(nil, b)
	if err != nil {
		t.Fatalf("encoded spans do not decode: %v", err)
	}
	if len(norm) != len(spans) {
		t.Fatalf("round trip: got %d spans; want %d", len(norm), len(spans))
	}
	b, err = Marshal(norm)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Unmarshal(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", again), fmt.Sprintf("%+v", norm); got != want {
		t.Fatalf("second round trip:\ngot  %s\nwant %s", got, want)
	}
}

func BenchmarkMarshalUnmarshal(b *testing.B) {
	spans := make([]model.Span, 100)
	for i := range spans {
		s := model.Span{TraceID: tid, SpanID: model.SpanID{byte(i)}, ParentSpanID: pid, Name: "GET /cart", Kind: model.SpanKindServer,
			StartTime: 1700000000000000001, Duration: 1000, Service: "checkout", Host: "web-1", Attributes: allTypes("a.")}
		s.References = []model.SpanRef{{Type: model.RefChildOf, TraceID: tid, SpanID: pid}}
		spans[i] = s
	}
	b.ReportAllocs()
	var got []model.Span
	for b.Loop() {
		data, err := Marshal(spans)
		if err != nil {
			b.Fatal(err)
		}
		if got, err = Unmarshal(got[:0], data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
}
