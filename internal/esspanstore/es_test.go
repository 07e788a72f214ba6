package esspanstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/spanstore"
	"github.com/vigilhq/vigil/internal/storage"
)

func testOptions(t testing.TB) Options {
	o := DefaultOptions()
	o.URLs = []string{estest.URL(t)}
	o.IndexPrefix = fmt.Sprintf("vigiltest-%08x", rand.Uint32())
	o.Replicas = 0
	o.Retention = 0
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// openES opens a store with an index prefix of its own and deletes its
// indices and templates when the test ends.
func openES(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		defer s.Close()
		for _, path := range []string{
			"/" + s.prefix + "jaeger-span-*," + s.prefix + "jaeger-service-*," + s.prefix + "jaeger-dependencies-*",
			"/_index_template/" + s.prefix + "jaeger-span",
			"/_index_template/" + s.prefix + "jaeger-service",
			"/_index_template/" + s.prefix + "jaeger-dependencies",
		} {
			s.c.Do(context.Background(), http.MethodDelete, path, nil, "")
		}
	})
	return s
}

func getJSON(t testing.TB, s *Store, path string, v any) {
	t.Helper()
	status, body, err := s.c.Do(context.Background(), http.MethodGet, path, nil, "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", path, status, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func count(t testing.TB, s *Store, pattern string) int {
	t.Helper()
	var c struct{ Count int }
	getJSON(t, s, "/"+pattern+"/_count", &c)
	return c.Count
}

// testSpans makes n traces over three services: a frontend server root, a
// backend child and, in every other trace, a db grandchild; start times and
// durations in whole µs (Jaeger's precision for searches), all distinct.
func testSpans(base time.Time, n int) []model.Span {
	var out []model.Span
	t0 := base.Truncate(time.Microsecond).UnixNano()
	for i := range n {
		tr := tid(0, uint64(0x1000+i))
		if i%3 == 0 {
			tr = tid(uint64(i+1), uint64(0x2000+i)) // 128-bit
		}
		start := t0 + int64(i)*int64(time.Minute)
		region := []string{"eu", "us"}[i%2]
		root := model.Span{
			TraceID: tr, SpanID: sid(uint64(i*10 + 1)), Name: "GET /api", Kind: model.SpanKindServer,
			StartTime: start, Duration: int64(i+1) * int64(time.Millisecond), Service: "frontend", Host: "web-1", Grade: 1,
			Attributes: []model.TypedAttr{{Key: "http.status_code", Type: model.AttrInt64, Int: int64([]int{200, 500}[min(i%4, 1)])}},
			Process:    []model.TypedAttr{{Key: "region", Type: model.AttrString, Str: region}},
		}
		child := model.Span{
			TraceID: tr, SpanID: sid(uint64(i*10 + 2)), ParentSpanID: root.SpanID, Name: fmt.Sprintf("call-%d", i%2), Kind: model.SpanKindClient,
			StartTime: start + 1000, Duration: int64(i+1) * 500 * int64(time.Microsecond), Service: "backend",
			Attributes: []model.TypedAttr{{Key: "retry", Type: model.AttrBool, Int: int64(i % 2)}, {Key: "w", Type: model.AttrFloat64, Float: float64(i) / 3}},
			Process:    []model.TypedAttr{{Key: "region", Type: model.AttrString, Str: region}},
			Events:     []model.SpanEvent{{Time: start + 2000, Name: "queued", Attributes: []model.TypedAttr{{Key: "queue", Type: model.AttrString, Str: fmt.Sprintf("q%d", i%3)}}}},
		}
		if i%5 == 0 {
			child.StatusCode = 2
		}
		out = append(out, root, child)
		if i%2 == 0 {
			out = append(out, model.Span{
				TraceID: tr, SpanID: sid(uint64(i*10 + 3)), ParentSpanID: child.SpanID, Name: "SELECT",
				StartTime: start + 3000, Duration: 100 * int64(time.Microsecond), Service: "db",
				References: []model.SpanRef{{Type: model.RefChildOf, TraceID: tr, SpanID: child.SpanID}},
			})
		}
	}
	return out
}

func TestESTemplatesAndMapping(t *testing.T) {
	o := testOptions(t)
	s := openES(t, o)
	s2, err := Open(context.Background(), o) // templates installed twice
	if err != nil {
		t.Fatalf("second Open with the same prefix: %v", err)
	}
	s2.Close()
	var tpl struct {
		IndexTemplates []struct{ Name string } `json:"index_templates"`
	}
	getJSON(t, s, "/_index_template/"+s.prefix+"jaeger-*", &tpl)
	if len(tpl.IndexTemplates) != 3 {
		t.Fatalf("templates %s: got %+v; want span, service and dependencies", s.prefix+"jaeger-*", tpl)
	}

	ctx := context.Background()
	sp := fullSpan()
	sp.StartTime = time.Now().UnixNano()
	if err := s.Write(ctx, []model.Span{sp}); err != nil {
		t.Fatal(err)
	}
	idx := s.spanIndex(time.Unix(0, sp.StartTime))
	if !strings.HasPrefix(idx, o.IndexPrefix+"-jaeger-span-") {
		t.Fatalf("index %s: want %s-jaeger-span-YYYY-MM-DD", idx, o.IndexPrefix)
	}
	var m map[string]struct {
		Mappings struct {
			Properties map[string]json.RawMessage
		}
	}
	getJSON(t, s, "/"+idx+"/_mapping", &m)
	props := m[idx].Mappings.Properties
	typeOf := func(path ...string) string {
		p := props
		for i, name := range path {
			var f struct {
				Type       string
				Format     string
				Properties map[string]json.RawMessage
			}
			json.Unmarshal(p[name], &f)
			if i == len(path)-1 {
				if f.Format != "" {
					return f.Type + "/" + f.Format
				}
				return f.Type
			}
			p = f.Properties
		}
		return ""
	}
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{"traceID"}, "keyword"}, {[]string{"spanID"}, "keyword"}, {[]string{"operationName"}, "keyword"},
		{[]string{"startTime"}, "long"}, {[]string{"startTimeMillis"}, "date/epoch_millis"}, {[]string{"duration"}, "long"},
		{[]string{"flags"}, "integer"}, {[]string{"tags"}, "nested"}, {[]string{"tags", "key"}, "keyword"},
		{[]string{"tags", "value"}, "keyword"}, {[]string{"references"}, "nested"}, {[]string{"references", "traceID"}, "keyword"},
		{[]string{"logs"}, "nested"}, {[]string{"logs", "fields"}, "nested"}, {[]string{"process", "serviceName"}, "keyword"},
		{[]string{"process", "tags"}, "nested"},
	} {
		if got := typeOf(c.path...); got != c.want {
			t.Errorf("mapping of %s: got %q; want %q", strings.Join(c.path, "."), got, c.want)
		}
	}

	// The service index is mapped as Jaeger's template maps it, dynamic
	// templates included (e2e/jaegermapping_test.go compares every field).
	sidx := s.serviceIndex(time.Unix(0, sp.StartTime))
	var sm map[string]struct {
		Mappings struct {
			DynamicTemplates []map[string]json.RawMessage `json:"dynamic_templates"`
			Properties       map[string]struct{ Type string }
		}
	}
	getJSON(t, s, "/"+sidx+"/_mapping", &sm)
	got := sm[sidx].Mappings
	var names []string
	for _, dt := range got.DynamicTemplates {
		for name := range dt {
			names = append(names, name)
		}
	}
	if strings.Join(names, ",") != "span_tags_map,process_tags_map" {
		t.Errorf("%s dynamic templates: got %q; want span_tags_map, process_tags_map", sidx, names)
	}
	for _, f := range []string{"serviceName", "operationName"} {
		if got.Properties[f].Type != "keyword" {
			t.Errorf("%s mapping of %s: got %q; want keyword", sidx, f, got.Properties[f].Type)
		}
	}
}

func TestESAgainstEmbedded(t *testing.T) {
	s := openES(t, testOptions(t))
	ctx := context.Background()
	emb, err := spanstore.Open(spanstore.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	spans := testSpans(base, 12)
	if err := s.Write(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := emb.Write(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	spanIdx, svcIdx := s.prefix+"jaeger-span-*", s.prefix+"jaeger-service-*"
	if got := count(t, s, spanIdx); got != len(spans) {
		t.Fatalf("span documents: got %d; want %d", got, len(spans))
	}
	services := count(t, s, svcIdx)

	// redelivery: a new Store (no service cache) rewrites everything
	s2, err := Open(ctx, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Write(ctx, spans); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	s2.Close()
	s.Refresh(ctx)
	if got := count(t, s, spanIdx); got != len(spans) {
		t.Errorf("span documents after rewriting: got %d; want %d", got, len(spans))
	}
	if got := count(t, s, svcIdx); got != services {
		t.Errorf("service documents after rewriting: got %d; want %d", got, services)
	}

	for _, id := range []model.TraceID{spans[0].TraceID, spans[3].TraceID} {
		got, err := s.GetTrace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := emb.GetTrace(ctx, id)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetTrace(%s):\ngot  %+v\nwant %+v", id, got, want)
		}
	}
	if _, err := s.GetTrace(ctx, tid(9, 9)); err != storage.ErrTraceNotFound {
		t.Errorf("GetTrace of an unknown id: got %v; want ErrTraceNotFound", err)
	}

	t0 := base.UnixNano()
	queries := map[string]storage.TraceQuery{
		"service":           {Service: "backend"},
		"service+op":        {Service: "backend", Operation: "call-1"},
		"op absent":         {Service: "db", Operation: "call-1"},
		"span tag":          {Tags: map[string]string{"http.status_code": "500"}},
		"bool tag":          {Service: "backend", Tags: map[string]string{"retry": "true"}},
		"process tag":       {Tags: map[string]string{"region": "eu"}},
		"event tag":         {Tags: map[string]string{"queue": "q1"}},
		"span.kind":         {Tags: map[string]string{"span.kind": "client"}},
		"error":             {Tags: map[string]string{"error": "true"}},
		"two tags one span": {Tags: map[string]string{"region": "us", "http.status_code": "500"}},
		"tags on two spans": {Tags: map[string]string{"retry": "true", "http.status_code": "500"}}, // same trace, different spans: no match
		"duration":          {Service: "frontend", DurationMin: 3 * int64(time.Millisecond), DurationMax: 7 * int64(time.Millisecond)},
		"duration min":      {DurationMin: 10 * int64(time.Millisecond)},
		"window":            {StartMin: t0 + int64(2*time.Minute), StartMax: t0 + int64(5*time.Minute)},
		"limit":             {Service: "frontend", Limit: 3},
		"limit+window":      {Service: "db", StartMin: t0 + int64(time.Minute), Limit: 2},
	}
	for name, q := range queries {
		got, err := s.FindTraces(ctx, q)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, err := emb.FindTraces(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 && name != "op absent" && name != "tags on two spans" {
			t.Errorf("%s: the embedded store finds nothing; the test data does not exercise the query", name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %d traces %v; want %d %v", name, len(got), traceIDs(got), len(want), traceIDs(want))
		}
	}

	gotSvc, err := s.Services(ctx)
	wantSvc, _ := emb.Services(ctx)
	if err != nil || !reflect.DeepEqual(gotSvc, wantSvc) {
		t.Errorf("Services: got %v, %v; want %v", gotSvc, err, wantSvc)
	}
	for _, c := range [][2]string{{"frontend", ""}, {"backend", ""}, {"backend", "client"}, {"backend", "server"}, {"db", ""}} {
		got, err := s.Operations(ctx, c[0], c[1])
		want, _ := emb.Operations(ctx, c[0], c[1])
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Operations(%q, %q): got %v, %v; want %v", c[0], c[1], got, err, want)
		}
	}
	for _, w := range []struct {
		end      int64
		lookback time.Duration
	}{{time.Now().UnixNano(), 24 * time.Hour}, {t0 + int64(5*time.Minute), 3 * time.Minute}} {
		got, err := s.Dependencies(ctx, w.end, w.lookback)
		want, _ := emb.Dependencies(ctx, w.end, w.lookback)
		if err != nil || !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("Dependencies(%d, %s): got %v, %v; want %v", w.end, w.lookback, got, err, want)
		}
	}
}

func traceIDs(traces [][]model.Span) []string {
	var out []string
	for _, tr := range traces {
		out = append(out, traceIDString(tr[0].TraceID))
	}
	return out
}

func TestESRetention(t *testing.T) {
	o := testOptions(t)
	o.Retention = 24 * time.Hour
	s := openES(t, o)
	ctx := context.Background()
	now := time.Now().UTC()
	old := testSpans(now.Add(-72*time.Hour), 1)
	cur := testSpans(now, 1)
	if err := s.Write(ctx, append(old, cur...)); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.DeleteExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	day := now.Add(-72 * time.Hour)
	want := []string{s.spanIndex(day), s.serviceIndex(day)}
	if !reflect.DeepEqual(deleted, []string{want[0], want[1]}) && !reflect.DeepEqual(deleted, []string{want[1], want[0]}) {
		t.Errorf("deleted %v; want %v", deleted, want)
	}
	s.Refresh(ctx)
	if got := count(t, s, s.prefix+"jaeger-span-*"); got != len(cur) {
		t.Errorf("spans left: got %d; want %d", got, len(cur))
	}
}

// TestESRejected has Elasticsearch refuse one span of a batch (more nested
// tags than index.mapping.nested_objects.limit allows): Write reports it in
// a *storage.RejectedError with the reason, and the other spans are stored.
func TestESRejected(t *testing.T) {
	s := openES(t, testOptions(t))
	ctx := context.Background()
	spans := testSpans(time.Now().Add(-time.Hour), 4)
	for i := range 10001 {
		spans[3].Attributes = append(spans[3].Attributes, model.TypedAttr{Key: fmt.Sprintf("k%d", i), Str: "v"})
	}
	err := s.Write(ctx, spans)
	var rej *storage.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write: got %v; want a *storage.RejectedError", err)
	}
	if len(rej.Items) != 1 || rej.Items[0].Index != 3 || !strings.Contains(rej.Items[0].Reason, "nested") {
		t.Fatalf("rejected %+v; want span 3 with a reason about nested documents", rej.Items)
	}
	if !strings.Contains(err.Error(), "nested") {
		t.Errorf("Write's error %q does not name the reason", err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, s.prefix+"jaeger-span-*"); n != len(spans)-1 {
		t.Errorf("stored %d spans; want the other %d", n, len(spans)-1)
	}
}

// TestESDependencyPaths writes calls whose parent's service is found in
// each way edges.go knows — in the batch, among recent spans, by a
// realtime get, by a later update when the child came first — and one it
// cannot resolve (the parent came to another store, after the child), and
// checks the calls counted by the aggregation and by the join add up.
func TestESDependencyPaths(t *testing.T) {
	o := testOptions(t)
	s := openES(t, o)
	other, err := Open(context.Background(), o) // a second ingester: caches of its own
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UnixNano()
	span := func(trace, id, parent uint64, service string, failed bool) model.Span {
		sp := model.Span{TraceID: tid(0, trace), SpanID: sid(id), Name: "op", Service: service, StartTime: t0 + int64(id), Duration: 1000}
		if parent != 0 {
			sp.ParentSpanID = sid(parent)
		}
		if failed {
			sp.StatusCode = 2
		}
		return sp
	}
	write := func(st *Store, spans ...model.Span) {
		t.Helper()
		if err := st.Write(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	write(s, span(1, 1, 0, "web", false), span(1, 2, 1, "api", false)) // in the batch
	write(s, span(1, 3, 1, "api", true))                               // recent
	write(s, span(2, 1, 0, "web", false))
	write(other, span(2, 2, 1, "api", false))                          // realtime get by id
	write(s, span(3, 2, 1, "db", false))                               // child first…
	write(s, span(3, 1, 0, "api", false))                              // …updated by its parent's write
	write(s, span(4, 2, 1, "db", true))                                // child first…
	write(other, span(4, 1, 0, "api", false))                          // …parent to another store: joined at query time
	write(s, span(5, 1, 0, "api", false), span(5, 2, 1, "api", false)) // same service: no call
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	var r struct{ Count int }
	getJSON(t, s, "/"+s.prefix+"jaeger-span-*/_count?q=_exists_:vigil.parentService", &r)
	if r.Count != 5 {
		t.Errorf("%d spans carry their parent's service; want 5 (all 6 children but the one whose parent went elsewhere)", r.Count)
	}
	got, err := s.Dependencies(ctx, time.Now().UnixNano(), 2*time.Hour)
	want := []storage.Dependency{
		{Parent: "api", Child: "db", CallCount: 2, ErrorCount: 1},
		{Parent: "web", Child: "api", CallCount: 3, ErrorCount: 1},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Dependencies: got %+v, %v; want %+v", got, err, want)
	}
}

// TestESRunWritesDependencies lets Run write today's dependency document,
// the one jaeger-query reads.
func TestESRunWritesDependencies(t *testing.T) {
	o := testOptions(t)
	o.DependencyInterval = 50 * time.Millisecond
	s := openES(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now().UnixNano()
	parent := model.Span{TraceID: tid(0, 7), SpanID: sid(1), Name: "GET", Service: "web", StartTime: now, Duration: 1000}
	child := model.Span{TraceID: tid(0, 7), SpanID: sid(2), ParentSpanID: sid(1), Name: "SELECT", Service: "db", StartTime: now + 1, Duration: 500}
	if err := s.Write(ctx, []model.Span{parent, child}); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	day := time.Unix(0, now).UTC().Format(dayLayout)
	var doc struct {
		Source struct {
			Timestamp    string `json:"timestamp"`
			Dependencies []struct {
				Parent, Child string
				CallCount     int
			} `json:"dependencies"`
		} `json:"_source"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body, err := s.c.Do(ctx, http.MethodGet, "/"+s.prefix+depIndexPart+day+"/_doc/"+day, nil, "")
		if err == nil && status == http.StatusOK && json.Unmarshal(body, &doc) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dependency document for %s: %d %v %s", day, status, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	d := doc.Source.Dependencies
	if !strings.HasPrefix(doc.Source.Timestamp, day+"T00:00:00") || len(d) != 1 || d[0].Parent != "web" || d[0].Child != "db" || d[0].CallCount != 1 {
		t.Errorf("dependency document of %s: %+v; want web → db, 1 call, at midnight", day, doc.Source)
	}
}

// TestESZipkinSharedSpanDependencies writes a Zipkin shared span as Brave
// reports it — the server's own call first, then the server half, then the
// client half, each in its own write — and checks both stores count one
// call web → users and one users → db: the server's call is the server
// half's child, though it names the shared id as its parent.
func TestESZipkinSharedSpanDependencies(t *testing.T) {
	s := openES(t, testOptions(t))
	emb, err := spanstore.Open(spanstore.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute).UnixNano()
	tr, shared := tid(0, 0x4c2b), sid(0x51a3)
	call := model.Span{TraceID: tr, SpanID: sid(0x61a3), ParentSpanID: shared, Name: "select", Kind: model.SpanKindClient, Service: "users", StartTime: t0 + 2000, Duration: 1000}
	db := model.Span{TraceID: tr, SpanID: sid(0x71a3), ParentSpanID: call.SpanID, Name: "select", Kind: model.SpanKindServer, Service: "db", StartTime: t0 + 2100, Duration: 800}
	server := model.Span{TraceID: tr, SpanID: model.SharedServerSpanID(tr, shared), ParentSpanID: shared, Name: "get", Kind: model.SpanKindServer, Service: "users", StartTime: t0 + 1000, Duration: 3000}
	client := model.Span{TraceID: tr, SpanID: shared, Name: "get", Kind: model.SpanKindClient, Service: "web", StartTime: t0, Duration: 5000}
	for _, batch := range [][]model.Span{{call, db}, {server}, {client}} {
		for _, st := range []interface {
			Write(context.Context, []model.Span) error
		}{s, emb} {
			if err := st.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want := []storage.Dependency{{Parent: "users", Child: "db", CallCount: 1}, {Parent: "web", Child: "users", CallCount: 1}}
	for name, st := range map[string]interface {
		Dependencies(context.Context, int64, time.Duration) ([]storage.Dependency, error)
	}{"elasticsearch": s, "embedded": emb} {
		got, err := st.Dependencies(ctx, time.Now().UnixNano(), time.Hour)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Dependencies: got %+v, %v; want %+v", name, got, err, want)
		}
	}
	var r struct{ Count int }
	getJSON(t, s, "/"+s.prefix+"jaeger-span-*/_count?q=_exists_:vigil.parentService", &r)
	if r.Count != 3 {
		t.Errorf("%d spans carry their caller's service; want 3 (all but the client half): the aggregation, not the join, counts them", r.Count)
	}
}
