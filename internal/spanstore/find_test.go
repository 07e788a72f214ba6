package spanstore

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// searchFixture stores five traces:
//
//	1: frontend GET / (server, 50ms, http.status_code=200) → users getUser (client... server, 5ms)
//	2: frontend GET / (500, error, 900ms, process region=eu) → users getUser (error)
//	3: frontend POST /login (20ms) on the next day
//	4: users getUser alone (30ms, event attribute cache=miss)
//	5: frontend GET / (200) whose tag and duration are on different spans
//
// seal is the head size sealed into an index segment (0 for the default):
// 1 puts every span in a segment, 4 the first batch only.
func searchFixture(t *testing.T, seal int) *Store {
	s := openStore(t, t.TempDir(), func(o *Options) { o.sealSpans = seal })
	attr := func(k, v string) []model.TypedAttr {
		return []model.TypedAttr{{Key: k, Type: model.AttrString, Str: v}}
	}
	ms := int64(time.Millisecond)
	s1 := span(1, 1, "frontend", "GET /", day0+1*ms, 50*ms)
	s1.Kind = model.SpanKindServer
	s1.Attributes = []model.TypedAttr{{Key: "http.status_code", Type: model.AttrInt64, Int: 200}}
	c1 := span(1, 2, "users", "getUser", day0+2*ms, 5*ms)
	c1.ParentSpanID, c1.Kind = sid(1), model.SpanKindServer
	s2 := span(2, 1, "frontend", "GET /", day0+10*ms, 900*ms)
	s2.Kind = model.SpanKindServer
	s2.Attributes = []model.TypedAttr{{Key: "http.status_code", Type: model.AttrInt64, Int: 500}}
	s2.Process = attr("region", "eu")
	s2.StatusCode = 2
	c2 := span(2, 2, "users", "getUser", day0+11*ms, 800*ms)
	c2.ParentSpanID, c2.Kind, c2.StatusCode = sid(1), model.SpanKindServer, 2
	s3 := span(3, 1, "frontend", "POST /login", day0+nsPerDay+ms, 20*ms)
	s3.Kind = model.SpanKindServer
	s4 := span(4, 1, "users", "getUser", day0+20*ms, 30*ms)
	s4.Kind = model.SpanKindServer
	s4.Events = []model.SpanEvent{{Time: day0 + 21*ms, Name: "lookup", Attributes: attr("cache", "miss")}}
	s5a := span(5, 1, "frontend", "GET /", day0+30*ms, 1*ms)
	s5a.Attributes = []model.TypedAttr{{Key: "http.status_code", Type: model.AttrInt64, Int: 200}}
	s5b := span(5, 2, "frontend", "GET /", day0+31*ms, 700*ms)
	s5b.ParentSpanID = sid(1)
	write(t, s, s1, c1, s2, c2)
	write(t, s, s3, s4, s5a, s5b)
	return s
}

func TestFindTraces(t *testing.T) {
	for _, seal := range []int{0, 1, 4} {
		t.Run(fmt.Sprint("seal=", seal), func(t *testing.T) { testFindTraces(t, seal) })
	}
}

func testFindTraces(t *testing.T, seal int) {
	s := searchFixture(t, seal)
	ms := int64(time.Millisecond)
	f := func(name string, q storage.TraceQuery, want ...string) {
		t.Helper()
		got, err := s.FindTraces(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ids := traceIDs(got); !reflect.DeepEqual(ids, want) && !(len(ids) == 0 && len(want) == 0) {
			t.Errorf("%s: got traces %v, want %v", name, ids, want)
		}
	}
	f("everything, latest first", storage.TraceQuery{}, "0003", "0005", "0004", "0002", "0001")
	f("limit", storage.TraceQuery{Limit: 2}, "0003", "0005")
	f("service", storage.TraceQuery{Service: "users"}, "0004", "0002", "0001")
	f("unknown service", storage.TraceQuery{Service: "nope"})
	f("service+operation", storage.TraceQuery{Service: "frontend", Operation: "POST /login"}, "0003")
	f("operation of another service", storage.TraceQuery{Service: "users", Operation: "POST /login"})
	f("int tag as string", storage.TraceQuery{Tags: map[string]string{"http.status_code": "200"}}, "0005", "0001")
	f("process tag", storage.TraceQuery{Tags: map[string]string{"region": "eu"}}, "0002")
	f("event tag", storage.TraceQuery{Tags: map[string]string{"cache": "miss"}}, "0004")
	f("error tag from status", storage.TraceQuery{Service: "users", Tags: map[string]string{"error": "true"}}, "0002")
	f("span.kind tag", storage.TraceQuery{Service: "users", Tags: map[string]string{"span.kind": "server"}}, "0004", "0002", "0001")
	f("two tags on one span", storage.TraceQuery{Tags: map[string]string{"region": "eu", "http.status_code": "500"}}, "0002")
	f("two tags on different spans", storage.TraceQuery{Tags: map[string]string{"region": "eu", "cache": "miss"}})
	f("min duration", storage.TraceQuery{DurationMin: 600 * ms}, "0005", "0002")
	f("max duration", storage.TraceQuery{Service: "users", DurationMax: 10 * ms}, "0001")
	f("duration range", storage.TraceQuery{DurationMin: 20 * ms, DurationMax: 50 * ms}, "0003", "0004", "0001")
	f("start range", storage.TraceQuery{StartMin: day0 + 5*ms, StartMax: day0 + 25*ms}, "0004", "0002")
	f("start min excludes day0", storage.TraceQuery{StartMin: day0 + nsPerDay}, "0003")
	// Jaeger semantics: every criterion on the same span. Trace 5 has the
	// tag on one span and the long duration on another.
	f("tag and duration on one span", storage.TraceQuery{Service: "frontend", Operation: "GET /",
		Tags: map[string]string{"http.status_code": "200"}, DurationMin: 40 * ms}, "0001")
	f("all criteria", storage.TraceQuery{Service: "frontend", Operation: "GET /", Tags: map[string]string{"http.status_code": "500"},
		DurationMin: 100 * ms, DurationMax: time.Second.Nanoseconds(), StartMin: day0, StartMax: day0 + nsPerDay, Limit: 5}, "0002")

	// Whole traces come back, not only the matching span.
	got, _ := s.FindTraces(context.Background(), storage.TraceQuery{Tags: map[string]string{"region": "eu"}})
	if len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("got %d traces, want trace 2 with its 2 spans", len(got))
	}
}

func TestServicesOperations(t *testing.T) {
	for _, seal := range []int{0, 1, 4} {
		t.Run(fmt.Sprint("seal=", seal), func(t *testing.T) { testServicesOperations(t, seal) })
	}
}

func testServicesOperations(t *testing.T, seal int) {
	s := searchFixture(t, seal)
	ctx := context.Background()
	svcs, _ := s.Services(ctx)
	if want := []string{"frontend", "users"}; !reflect.DeepEqual(svcs, want) {
		t.Errorf("Services = %v, want %v", svcs, want)
	}
	f := func(service, kind string, want ...storage.Operation) {
		t.Helper()
		got, err := s.Operations(ctx, service, kind)
		if err != nil || !reflect.DeepEqual(got, want) && len(want)+len(got) > 0 {
			t.Errorf("Operations(%q, %q) = %v, %v; want %v", service, kind, got, err, want)
		}
	}
	f("frontend", "", storage.Operation{Name: "GET /", SpanKind: ""}, storage.Operation{Name: "GET /", SpanKind: "server"}, storage.Operation{Name: "POST /login", SpanKind: "server"})
	f("frontend", "server", storage.Operation{Name: "GET /", SpanKind: "server"}, storage.Operation{Name: "POST /login", SpanKind: "server"})
	f("users", "client")
	f("nope", "")
}

func TestDependencies(t *testing.T) {
	for _, seal := range []int{0, 1, 4} {
		t.Run(fmt.Sprint("seal=", seal), func(t *testing.T) { testDependencies(t, seal) })
	}
}

func testDependencies(t *testing.T, seal int) {
	s := searchFixture(t, seal)
	got, err := s.Dependencies(context.Background(), day0+nsPerDay, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Trace 5's child is in the same service and is no dependency.
	want := []storage.Dependency{{Parent: "frontend", Child: "users", CallCount: 2, ErrorCount: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	got, _ = s.Dependencies(context.Background(), day0+5*int64(time.Millisecond), time.Hour)
	if want := []storage.Dependency{{Parent: "frontend", Child: "users", CallCount: 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("lookback window: got %+v, want %+v", got, want)
	}
}
