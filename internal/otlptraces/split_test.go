package otlptraces

import (
	"bytes"
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vigilhq/vigil/internal/model"
)

// checkSplit checks SplitByTrace(data, maxBytes) against decoding data
// whole: every part decodes to spans of its trace only, within maxBytes
// unless it holds one span; a trace's parts are adjacent, traces come in
// the order of their first span, and the parts together decode to the
// spans of data grouped by trace, each trace's in order. It returns the
// parts.
func checkSplit(t testing.TB, data []byte, maxBytes int) []TraceBatch {
	t.Helper()
	whole, err := Unmarshal(nil, data)
	if err != nil {
		return nil
	}
	parts, err := SplitByTrace(data, maxBytes)
	if err != nil {
		// Protobuf that decoders skip but the splitter does not (groups):
		// the collector then splits its own encoding of the spans.
		return nil
	}
	var want []model.Span
	var traces []model.TraceID
	done := map[model.TraceID]bool{}
	for _, s := range whole {
		if done[s.TraceID] {
			continue
		}
		done[s.TraceID] = true
		traces = append(traces, s.TraceID)
		for _, o := range whole {
			if o.TraceID == s.TraceID {
				want = append(want, o)
			}
		}
	}
	var got []model.Span
	var gotTraces []model.TraceID
	for i, p := range parts {
		spans, err := Unmarshal(nil, p.Data)
		if err != nil {
			t.Fatalf("part %d does not decode: %v", i, err)
		}
		if len(spans) == 0 {
			t.Fatalf("part %d holds no span", i)
		}
		for _, s := range spans {
			if s.TraceID != p.TraceID {
				t.Fatalf("part %d of trace %s holds a span of trace %s", i, p.TraceID, s.TraceID)
			}
		}
		if maxBytes > 0 && len(p.Data) > maxBytes && len(spans) > 1 {
			t.Fatalf("part %d: %d bytes, %d spans; want at most %d bytes unless it holds one span", i, len(p.Data), len(spans), maxBytes)
		}
		if len(gotTraces) == 0 || gotTraces[len(gotTraces)-1] != p.TraceID {
			gotTraces = append(gotTraces, p.TraceID)
		}
		got = append(got, spans...)
	}
	if g, w := fmt.Sprint(gotTraces), fmt.Sprint(traces); g != w {
		t.Fatalf("parts are of traces %s; want %s, each trace's parts together", g, w)
	}
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Fatalf("parts decode to\n%s\nwant the spans of the request grouped by trace\n%s", g, w)
	}
	return parts
}

func TestSplitByTrace(t *testing.T) {
	span := func(trace model.TraceID, id byte, service string) model.Span {
		return model.Span{TraceID: trace, SpanID: model.SpanID{id}, Name: "op", StartTime: 1_700_000_000_000_000_000,
			Duration: 1000, Service: service, Attributes: allTypes("a.")}
	}
	a1, b1, a2, b2, a3 := span(tid, 1, "front"), span(tid2, 2, "front"), span(tid, 3, "db"), span(tid2, 4, "db"), span(tid, 5, "front")
	data, err := Marshal([]model.Span{a1, b1, a2, b2, a3})
	if err != nil {
		t.Fatal(err)
	}
	parts := checkSplit(t, data, 0)
	if len(parts) != 2 || parts[0].TraceID != tid || parts[1].TraceID != tid2 {
		t.Fatalf("got %d parts; want 2, of %s then %s", len(parts), tid, tid2)
	}
	if got := parts[0].Key(); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("key: got %q; want the trace id in 32 hex digits", got)
	}

	one, err := Marshal([]model.Span{a1, a2, a3})
	if err != nil {
		t.Fatal(err)
	}
	parts = checkSplit(t, one, 0)
	if len(parts) != 1 || &parts[0].Data[0] != &one[0] || len(parts[0].Data) != len(one) {
		t.Errorf("a request of one trace: got %d parts; want the request itself", len(parts))
	}

	if parts, err := SplitByTrace(nil, 0); err != nil || len(parts) != 0 {
		t.Errorf("empty request: got %d parts, %v; want none", len(parts), err)
	}
	for _, bad := range [][]byte{{0x0a, 0x05, 0x12}, {0xff}, data[:len(data)-1]} {
		if _, err := SplitByTrace(bad, 0); err == nil {
			t.Errorf("SplitByTrace(%q): got no error", bad)
		}
	}
}

// TestSplitByTraceCutsLargeTraces: a trace larger than maxBytes is cut
// into parts that fit, under its trace id, and the other traces stay whole.
func TestSplitByTraceCutsLargeTraces(t *testing.T) {
	var spans []model.Span
	for i := 1; i <= 40; i++ {
		spans = append(spans, model.Span{TraceID: tid, SpanID: model.SpanID{byte(i)}, Name: "op", Service: fmt.Sprint("svc-", i%3),
			StartTime: int64(i), Attributes: allTypes("a.")})
		if i%10 == 0 {
			spans = append(spans, model.Span{TraceID: tid2, SpanID: model.SpanID{byte(i)}, Name: "small", Service: "svc-0"})
		}
	}
	data, err := Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	for _, max := range []int{len(data) / 3, len(data) / 10, 1} {
		parts := checkSplit(t, data, max)
		n := 0
		for _, p := range parts {
			if p.TraceID == tid {
				n++
			}
		}
		if n < 2 || parts[len(parts)-1].TraceID != tid2 {
			t.Errorf("maxBytes %d: %d parts of the large trace, then %v; want several, then the small trace whole", max, n, parts[len(parts)-1].TraceID)
		}
	}
	// One trace only, too large: cut too.
	data, _ = Marshal(spans[:20])
	if parts := checkSplit(t, data, len(data)/2); len(parts) < 2 {
		t.Errorf("one trace over maxBytes: got %d parts; want it cut", len(parts))
	}
}

// TestSplitByTraceKeepsFieldsAsSent: what Vigil's decoder does not read
// (trace state, scope attributes, arrays and maps) reaches the parts
// unchanged: a trace's part is, to pdata, the request it came in.
func TestSplitByTraceKeepsFieldsAsSent(t *testing.T) {
	seeds := fastSeeds(t)
	data := seeds[len(seeds)-1]                     // of trace tid
	mixed := append(bytes.Clone(data), seeds[1]...) // and one span of tid2
	parts := checkSplit(t, mixed, 0)
	if len(parts) != 2 {
		t.Fatalf("got %d parts; want 2", len(parts))
	}
	asJSON := func(b []byte) string {
		t.Helper()
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Fatal(err)
		}
		j, err := req.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	if got, want := asJSON(parts[0].Data), asJSON(data); got != want {
		t.Errorf("part of the first trace:\n%s\nwant the request it came in:\n%s", got, want)
	}
}

func FuzzSplitByTrace(f *testing.F) {
	for _, s := range fastSeeds(f) {
		f.Add(s, 0)
		f.Add(s, len(s)/2)
	}
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, maxBytes int) {
		checkSplit(t, data, maxBytes)
	})
}

func BenchmarkSplitByTrace(b *testing.B) {
	// 51 traces of 10 spans with 11 attributes, each span under its own
	// resource: the load of vigil bench traces.
	var spans []model.Span
	for tr := range 51 {
		for s := range 10 {
			spans = append(spans, model.Span{TraceID: model.TraceID{byte(tr), 1}, SpanID: model.SpanID{byte(s), 2}, Name: "op",
				Service: fmt.Sprint("bench-", (tr+s)%20), Host: "host-1", StartTime: 1700000000000000001, Duration: 1000,
				Attributes: append(allTypes("a."), allTypes("b.")[:4]...)})
		}
	}
	data, err := Marshal(spans)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SplitByTrace(data, 8<<20); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
}
