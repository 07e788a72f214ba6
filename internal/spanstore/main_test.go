package spanstore

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/model"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	code := m.Run()
	closeBenchStore()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// day0 is 2026-03-02T00:00:00Z in ns.
var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).UnixNano()

func openStore(t testing.TB, dir string, opts ...func(*Options)) *Store {
	t.Helper()
	o := Options{Dir: dir}
	for _, f := range opts {
		f(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t testing.TB, s *Store, spans ...model.Span) {
	t.Helper()
	if err := s.Write(context.Background(), spans); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func tid(n uint64) model.TraceID {
	var id model.TraceID
	for i := 0; i < 8; i++ {
		id[15-i] = byte(n >> (8 * i))
	}
	id[0] = 0xab
	return id
}

func sid(n uint64) model.SpanID {
	var id model.SpanID
	for i := 0; i < 8; i++ {
		id[7-i] = byte(n >> (8 * i))
	}
	return id
}

// span returns a minimal span of trace t, span n, starting at start.
func span(t, n uint64, service, op string, start, dur int64) model.Span {
	return model.Span{TraceID: tid(t), SpanID: sid(n), Service: service, Name: op, StartTime: start, Duration: dur}
}

// fullSpan sets every field of model.Span.
func fullSpan() model.Span {
	return model.Span{
		TraceID: tid(7), SpanID: sid(2), ParentSpanID: sid(1), Name: "GET /users/{id}",
		Kind: model.SpanKindServer, StartTime: day0 + 123456789, Duration: 4567890, Flags: 1,
		Service: "users", Host: "web-1", Env: "prod", Grade: 2,
		Attributes: []model.TypedAttr{
			{Key: "http.method", Type: model.AttrString, Str: "GET"},
			{Key: "retry", Type: model.AttrBool, Int: 1},
			{Key: "http.status_code", Type: model.AttrInt64, Int: -200},
			{Key: "ratio", Type: model.AttrFloat64, Float: 0.25},
			{Key: "blob", Type: model.AttrBinary, Str: "\x00\xffé"},
		},
		Process: []model.TypedAttr{{Key: "k8s.pod", Type: model.AttrString, Str: "users-7f"}},
		Events: []model.SpanEvent{
			{Time: day0 + 123456790, Name: "cache miss", Attributes: []model.TypedAttr{{Key: "key", Type: model.AttrString, Str: "u:1"}}},
			{Time: day0 + 123456791, Name: "empty"},
		},
		References: []model.SpanRef{
			{Type: model.RefChildOf, TraceID: tid(7), SpanID: sid(1)},
			{Type: model.RefFollowsFrom, TraceID: tid(8), SpanID: sid(9)},
		},
		StatusCode: 2, StatusMessage: "boom", Warnings: []string{"clock skew", "truncated"},
	}
}

func traceIDs(traces [][]model.Span) []string {
	out := make([]string, len(traces))
	for i, tr := range traces {
		out[i] = fmt.Sprint(tr[0].TraceID.String()[28:])
	}
	return out
}
