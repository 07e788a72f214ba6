package spanstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// benchSpans is the store size of the read benchmarks:
// VIGIL_BENCH_SPANS, default 500k.
func benchSpans() int {
	if n, err := strconv.Atoi(os.Getenv("VIGIL_BENCH_SPANS")); err == nil && n > 0 {
		return n
	}
	return 500_000
}

// genTrace fills out with a trace of len(out) spans: a root in one of 50
// services calling the others, OTel-like attributes, starts spread over two
// days.
func genTrace(r *rand.Rand, t uint64, out []model.Span) {
	start := day0 + r.Int64N(2*nsPerDay)
	for i := range out {
		svc := r.IntN(50)
		sp := model.Span{
			TraceID: tid(t), SpanID: sid(uint64(i + 1)), Name: fmt.Sprintf("op-%d", r.IntN(20)),
			Kind: model.SpanKindServer, StartTime: start + int64(i)*1e5, Duration: r.Int64N(int64(time.Second)),
			Service: fmt.Sprintf("svc-%d", svc), Host: fmt.Sprintf("host-%d", svc%7), Env: "prod", Grade: 1 + svc%4,
			Attributes: []model.TypedAttr{
				{Key: "http.method", Type: model.AttrString, Str: "GET"},
				{Key: "http.route", Type: model.AttrString, Str: fmt.Sprintf("/api/v1/items/%d", r.IntN(100))},
				{Key: "http.status_code", Type: model.AttrInt64, Int: []int64{200, 200, 200, 404, 500}[r.IntN(5)]},
				{Key: "user.id", Type: model.AttrString, Str: strconv.Itoa(r.IntN(100000))},
			},
			Process: []model.TypedAttr{{Key: "service.version", Type: model.AttrString, Str: "1.4.2"}},
		}
		if i > 0 {
			sp.ParentSpanID = sid(uint64(r.IntN(i) + 1))
			sp.References = []model.SpanRef{{Type: model.RefChildOf, TraceID: sp.TraceID, SpanID: sp.ParentSpanID}}
		}
		out[i] = sp
	}
}

const benchTraceLen = 10

var benchStore struct {
	s     *Store
	dir   string
	n     int
	bytes int64
}

// closeBenchStore removes the store populated builds; TestMain calls it.
func closeBenchStore() {
	if benchStore.s != nil {
		benchStore.s.Close()
		os.RemoveAll(benchStore.dir)
	}
}

// populated returns a store holding benchSpans spans, built once.
func populated(b *testing.B) *Store {
	b.Helper()
	if n := benchSpans(); benchStore.s != nil && benchStore.n == n {
		return benchStore.s
	}
	dir, err := os.MkdirTemp("", "spanstore-bench")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	n := benchSpans()
	r := rand.New(rand.NewPCG(1, 2))
	batch := make([]model.Span, 1000)
	for t := 0; t < n/benchTraceLen; t += len(batch) / benchTraceLen {
		for k := 0; k < len(batch)/benchTraceLen; k++ {
			genTrace(r, uint64(t+k), batch[k*benchTraceLen:(k+1)*benchTraceLen])
		}
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	benchStore.s, benchStore.dir, benchStore.n, benchStore.bytes = s, dir, n, s.DiskBytes()
	return s
}

func BenchmarkWrite(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(3, 4))
	batch := make([]model.Span, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	spans := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for k := 0; k < len(batch)/benchTraceLen; k++ {
			genTrace(r, uint64(i*1000+k), batch[k*benchTraceLen:(k+1)*benchTraceLen])
		}
		b.StartTimer()
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		spans += len(batch)
	}
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(s.DiskBytes())/float64(spans), "disk-bytes/span")
}

func BenchmarkGetTrace(b *testing.B) {
	s := populated(b)
	traces := benchStore.n / benchTraceLen
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		got, err := s.GetTrace(context.Background(), tid(uint64(i*7919%traces)))
		lat = append(lat, time.Since(t0))
		if err != nil || len(got) != benchTraceLen {
			b.Fatalf("got %d spans, %v", len(got), err)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(benchStore.bytes)/float64(benchStore.n), "disk-bytes/span")
}

func BenchmarkFindTraces(b *testing.B) {
	s := populated(b)
	for _, bc := range []struct {
		name string
		q    storage.TraceQuery
	}{
		{"service", storage.TraceQuery{Service: "svc-7", Limit: 20}},
		{"service+op+1h", storage.TraceQuery{Service: "svc-7", Operation: "op-3", StartMin: day0 + 10*3600e9, StartMax: day0 + 11*3600e9, Limit: 20}},
		{"service+tag", storage.TraceQuery{Service: "svc-7", Tags: map[string]string{"http.status_code": "500"}, Limit: 20}},
		{"rare-tag", storage.TraceQuery{Tags: map[string]string{"user.id": "4242"}, Limit: 20}},
		{"service+rare-tag", storage.TraceQuery{Service: "svc-7", Tags: map[string]string{"http.route": "/api/v1/items/42"}, Limit: 20}},
		{"service+duration", storage.TraceQuery{Service: "svc-7", DurationMin: 9e8, Limit: 20}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := s.FindTraces(context.Background(), bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures recovery: reopening the populated store rebuilds
// its index from the span files.
func BenchmarkOpen(b *testing.B) {
	populated(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := Open(Options{Dir: benchStore.dir})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(benchStore.n), "spans")
}
