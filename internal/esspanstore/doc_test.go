package esspanstore

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func tid(hi, lo uint64) model.TraceID {
	var id model.TraceID
	for i := range 8 {
		id[i] = byte(hi >> (56 - 8*i))
		id[8+i] = byte(lo >> (56 - 8*i))
	}
	return id
}

func sid(v uint64) model.SpanID {
	var id model.SpanID
	for i := range 8 {
		id[i] = byte(v >> (56 - 8*i))
	}
	return id
}

// fullSpan has every field and every attribute type set.
func fullSpan() model.Span {
	return model.Span{
		TraceID: tid(0x0102030405060708, 0x090a0b0c0d0e0f10), SpanID: sid(0x00000000000000ab), ParentSpanID: sid(0x1111111111111111),
		Name: "GET /users/{id}", Kind: model.SpanKindServer, StartTime: 1_763_900_000_123_456_789, Duration: 1_500_250, Flags: 1,
		Service: "frontend", Host: "web-1", Env: "prod", Grade: 2,
		Attributes: []model.TypedAttr{
			{Key: "http.method", Type: model.AttrString, Str: "GET"},
			{Key: "cache.hit", Type: model.AttrBool, Int: 1},
			{Key: "http.status_code", Type: model.AttrInt64, Int: 503},
			{Key: "ratio", Type: model.AttrFloat64, Float: 0.1 + 0.2},
			{Key: "blob", Type: model.AttrBinary, Str: "\x00\xffA"},
		},
		Process: []model.TypedAttr{{Key: "ip", Type: model.AttrString, Str: "10.0.0.1"}, {Key: "pid", Type: model.AttrInt64, Int: 42}},
		Events: []model.SpanEvent{
			{Time: 1_763_900_000_124_000_001, Name: "retry", Attributes: []model.TypedAttr{{Key: "attempt", Type: model.AttrInt64, Int: 2}}},
			{Time: 1_763_900_000_125_000_000, Attributes: []model.TypedAttr{{Key: "message", Type: model.AttrString, Str: "done"}}},
		},
		References: []model.SpanRef{{Type: model.RefFollowsFrom, TraceID: tid(0, 0x77), SpanID: sid(0x22)}},
		StatusCode: 2, StatusMessage: "upstream unavailable",
		Warnings: []string{"clock skew adjusted"},
	}
}

func TestDocGolden(t *testing.T) {
	s := fullSpan()
	d := toDoc(&s)
	got, err := json.MarshalIndent(&d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "span.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("document differs from %s (run with -update after checking):\ngot:\n%s", path, got)
	}
	// The names a stock jaeger-query reads.
	var m map[string]any
	json.Unmarshal(got, &m)
	for _, k := range []string{"traceID", "spanID", "parentSpanID", "flags", "operationName", "references", "startTime", "startTimeMillis", "duration", "tags", "logs", "process"} {
		if _, ok := m[k]; !ok {
			t.Errorf("document has no %q", k)
		}
	}
}

func TestDocRoundTrip(t *testing.T) {
	f := func(name string, s model.Span) {
		t.Helper()
		d := toDoc(&s)
		b, _ := json.Marshal(&d)
		var back spanDoc
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, err := fromDoc(&back)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("%s: round trip\ngot  %+v\nwant %+v", name, got, s)
		}
	}
	f("full", fullSpan())
	f("minimal root", model.Span{TraceID: tid(0, 1), SpanID: sid(2), Name: "op", Service: "svc", StartTime: 1000, Duration: 1})
	s := fullSpan()
	s.References = []model.SpanRef{{Type: model.RefChildOf, TraceID: s.TraceID, SpanID: s.ParentSpanID}}
	s.Attributes = append(s.Attributes, model.TypedAttr{Key: "f", Type: model.AttrFloat64, Float: math.MaxFloat64})
	f("explicit parent reference", s)
}

func TestIDs(t *testing.T) {
	f := func(id model.TraceID, want string) {
		t.Helper()
		if got := traceIDString(id); got != want {
			t.Errorf("traceIDString = %q; want %q", got, want)
		}
		back, err := parseTraceID(want)
		if err != nil || back != id {
			t.Errorf("parseTraceID(%q) = %v, %v; want %v", want, back, err, id)
		}
	}
	f(tid(0, 0xab), "00000000000000ab")
	f(tid(1, 2), "00000000000000010000000000000002")
	// a 64-bit id written by an old Jaeger, leading zeros trimmed
	if id, err := parseTraceID("ab"); err != nil || id != tid(0, 0xab) {
		t.Errorf("parseTraceID(ab) = %v, %v", id, err)
	}
	// Jaeger's service document id: FNV-1a 64 of service then operation
	if got, want := serviceDocID("", ""), "cbf29ce484222325"; got != want {
		t.Errorf("serviceDocID of empty = %s; want the FNV-1a offset basis %s", got, want)
	}
}

func TestFromJaegerDoc(t *testing.T) {
	// a document as a Jaeger collector writes it: no "vigil", µs times
	src := `{"traceID":"00000000000000ab","spanID":"0000000000000002","flags":1,"operationName":"op",
	"references":[{"refType":"CHILD_OF","traceID":"00000000000000ab","spanID":"0000000000000001"}],
	"startTime":1700000000000001,"startTimeMillis":1700000000000,"duration":5,
	"tags":[{"key":"span.kind","type":"string","value":"client"},{"key":"n","type":"int64","value":"7"},{"key":"m","type":"int64","value":8},{"key":"b","type":"bool","value":true}],
	"logs":[{"timestamp":1700000000000002,"fields":[{"key":"event","type":"string","value":"x"}]}],
	"process":{"serviceName":"svc","tags":[{"key":"hostname","type":"string","value":"h"}]}}`
	var d spanDoc
	if err := json.Unmarshal([]byte(src), &d); err != nil {
		t.Fatal(err)
	}
	got, err := fromDoc(&d)
	if err != nil {
		t.Fatal(err)
	}
	want := model.Span{
		TraceID: tid(0, 0xab), SpanID: sid(2), ParentSpanID: sid(1), Flags: 1, Name: "op", Kind: model.SpanKindClient,
		StartTime: 1700000000000001000, Duration: 5000, Service: "svc",
		Attributes: []model.TypedAttr{{Key: "n", Type: model.AttrInt64, Int: 7}, {Key: "m", Type: model.AttrInt64, Int: 8}, {Key: "b", Type: model.AttrBool, Int: 1}},
		Process:    []model.TypedAttr{{Key: "hostname", Type: model.AttrString, Str: "h"}},
		Events:     []model.SpanEvent{{Time: 1700000000000002000, Name: "x"}},
		References: []model.SpanRef{{Type: model.RefChildOf, TraceID: tid(0, 0xab), SpanID: sid(1)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
