package otlptraces

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vigilhq/vigil/internal/model"
)

// fastSeeds are requests the fast decoder handles, and some it leaves to
// pdata (arrays, maps, a second resource).
func fastSeeds(t testing.TB) [][]byte {
	full := model.Span{
		TraceID: tid, SpanID: sid, ParentSpanID: pid, Name: "GET /cart", Kind: model.SpanKindServer,
		StartTime: 1700000000000000001, Duration: 12_345_678, Flags: 0x301,
		Service: "checkout", Host: "web-1", Env: "prod", Grade: 3,
		Attributes: allTypes("a."), Process: allTypes("p."),
		Events: []model.SpanEvent{{Time: 1700000000000000100, Name: "exception", Attributes: allTypes("e.")}, {Name: "empty"}},
		References: []model.SpanRef{
			{Type: model.RefChildOf, TraceID: tid, SpanID: pid},
			{Type: model.RefFollowsFrom, TraceID: tid2, SpanID: model.SpanID{9}},
			{Type: model.RefChildOf, TraceID: tid2, SpanID: model.SpanID{10}},
		},
		StatusCode: 2, StatusMessage: "declined", Warnings: []string{"w1", "w2"},
	}
	plain := model.Span{TraceID: tid2, SpanID: model.SpanID{1}, Name: "root", StartTime: 5, Duration: -1, Service: "db"}
	var out [][]byte
	for _, spans := range [][]model.Span{{full}, {plain}, {full, plain, full}} {
		b, err := Marshal(spans)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	// What SDKs send and Marshal does not: a scope, a string grade,
	// the legacy env key, an array and a map attribute.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(model.AttrServiceName, "svc")
	rs.Resource().Attributes().PutStr(model.AttrGrade, "2")
	rs.Resource().Attributes().PutStr(model.AttrEnvLegacy, "staging")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("io.opentelemetry.http")
	ss.Scope().SetVersion("1.2")
	ss.Scope().Attributes().PutStr("k", "v")
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(tid))
	sp.SetSpanID(pcommon.SpanID(sid))
	sp.TraceState().FromRaw("a=b")
	sp.Attributes().PutStr("x", "y")
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	out = append(out, b)
	sp.Attributes().PutEmptySlice("list").AppendEmpty().SetInt(3)
	sp.Attributes().PutEmptyMap("map").PutStr("a", "b")
	b, _ = ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return append(out, b)
}

func TestDecodeFastMatchesPdata(t *testing.T) {
	seeds := fastSeeds(t)
	for i, b := range seeds {
		fast, ok := decodeFast(nil, b)
		if wantOK := i < len(seeds)-1; ok != wantOK {
			t.Fatalf("seed %d: fast path ok = %v, want %v", i, ok, wantOK)
		}
		slow, err := unmarshalPdata(nil, b)
		if err != nil {
			t.Fatal(err)
		}
		if ok && fmt.Sprintf("%+v", fast) != fmt.Sprintf("%+v", slow) {
			t.Fatalf("seed %d:\nfast  %+v\npdata %+v", i, fast, slow)
		}
	}
}

// FuzzDecodeFast checks that whatever the fast decoder accepts, pdata
// accepts too and decodes to the same spans.
func FuzzDecodeFast(f *testing.F) {
	for _, b := range fastSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeFast([]model.Span{{Name: "kept"}}, data)
		if !ok {
			if len(fast) != 1 {
				t.Fatalf("failed fast decode left %d spans in dst", len(fast))
			}
			return
		}
		slow, err := unmarshalPdata([]model.Span{{Name: "kept"}}, data)
		if err != nil {
			t.Fatalf("fast path decoded what pdata rejects (%v): %+v", err, fast)
		}
		if got, want := fmt.Sprintf("%+v", fast), fmt.Sprintf("%+v", slow); got != want {
			t.Fatalf("fast  %s\npdata %s", got, want)
		}
	})
}

// BenchmarkUnmarshal compares the fast decoder with pdata's on a batch
// like the traces benchmark's: 11 attributes a span.
func BenchmarkUnmarshal(b *testing.B) {
	spans := make([]model.Span, 510)
	for i := range spans {
		spans[i] = model.Span{TraceID: tid, SpanID: model.SpanID{byte(i), byte(i >> 8)}, ParentSpanID: pid, Name: "op-3",
			Kind: model.SpanKindClient, StartTime: 1700000000000000001, Duration: 1000, Service: fmt.Sprint("bench-", i%20), Host: "host-1",
			Attributes: append(allTypes("a."), allTypes("b.")[:4]...)}
	}
	data, err := Marshal(spans)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		f    func([]model.Span, []byte) ([]model.Span, error)
	}{{"fast", Unmarshal}, {"pdata", unmarshalPdata}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var got []model.Span
			for b.Loop() {
				if got, err = bc.f(got[:0], data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// TestDecodeFastRejectsBadArrays: an array value the fast path keeps as
// bytes (a scope or link attribute) is still checked, so that a truncated
// element sends the request to pdata, which rejects it.
func TestDecodeFastRejectsBadArrays(t *testing.T) {
	msg := func(num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	truncated := []byte{0x0a, 0x05, 'a'}                  // AnyValue.string_value, 5 bytes announced, 1 given
	array := msg(1, truncated)                            // ArrayValue.values
	kv := cat(msg(1, []byte("k")), msg(2, msg(5, array))) // KeyValue{key, value: {array_value}}
	span := cat(msg(1, tid[:]), msg(2, sid[:]), msg(5, []byte("s")))
	scope := cat(msg(1, []byte("lib")), msg(3, kv))         // InstrumentationScope with the attribute
	req := msg(1, msg(2, cat(msg(1, scope), msg(2, span)))) // ExportTraceServiceRequest
	if _, err := unmarshalPdata(nil, req); err == nil {
		t.Fatal("pdata accepts the truncated array; the test input is wrong")
	}
	if spans, ok := decodeFast(nil, req); ok {
		t.Fatalf("fast path decoded a truncated array element: %+v", spans)
	}
}
