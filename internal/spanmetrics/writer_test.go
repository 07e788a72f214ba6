package spanmetrics

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	prommodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.uber.org/goleak"

	vmodel "github.com/vigilhq/vigil/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openTSDB opens a real Prometheus TSDB in a temporary directory.
func openTSDB(t *testing.T) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// lastSample reads the last sample of the series with exactly ls: its
// float value, or its histogram's count.
func lastSample(t *testing.T, db *tsdb.DB, ls labels.Labels) (ts int64, v float64, ok bool) {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var ms []*labels.Matcher
	ls.Range(func(l labels.Label) { ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value)) })
	set := q.Select(context.Background(), false, nil, ms...)
	for set.Next() {
		if labels.Compare(set.At().Labels(), ls) != 0 {
			continue
		}
		it := set.At().Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			ok = true
			switch vt {
			case chunkenc.ValFloat:
				ts, v = it.At()
			case chunkenc.ValHistogram:
				var h *histogram.Histogram
				ts, h = it.AtHistogram(nil)
				v = float64(h.Count)
			}
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return ts, v, ok
}

func TestWriterAppendsIntoTSDB(t *testing.T) {
	db := openTSDB(t)
	a := New(Options{})
	reg := prometheus.NewRegistry()
	w := NewWriter(WriterOptions{Registerer: reg}, a, db)
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	var spans []vmodel.Span
	for i := range 10 {
		spans = append(spans, span("cart", "GET /cart", vmodel.SpanKindServer, false, float64(5*i+1), 2*uint8(i%2), 3))
	}
	a.Observe(spans)
	a.ObserveEdge("web", "cart", 20*time.Millisecond, false)
	if err := w.Write(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	a.Observe(spans)
	if err := w.Write(context.Background(), t0.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}

	base := []string{"service_name", "cart", "span_name", "GET /cart", "span_kind", "SPAN_KIND_SERVER", "status_code", StatusError, "grade", "3"}
	f := func(want float64, name string, extra ...string) {
		t.Helper()
		ls := labels.FromStrings(append(append([]string{prommodel.MetricNameLabel, name}, base...), extra...)...)
		ts, v, ok := lastSample(t, db, ls)
		if !ok {
			t.Errorf("%s: no series", ls)
			return
		}
		if ts != t0.Add(15*time.Second).UnixMilli() || v != want {
			t.Errorf("%s: got %v at %d; want %v at %d", ls, v, ts, want, t0.Add(15*time.Second).UnixMilli())
		}
	}
	f(10, CallsMetric)
	f(10, DurationMetric+"_count")
	f(10, DurationMetric) // the native histogram
	f(10, DurationMetric+"_bucket", "le", "+Inf")
	// The errors last 6, 16, 26, 36 and 46 ms, twice.
	f(2, DurationMetric+"_bucket", "le", "10")
	f(10, DurationMetric+"_bucket", "le", "50")
	if _, _, ok := lastSample(t, db, labels.FromStrings(prommodel.MetricNameLabel, EdgeCallsMetric, "child", "cart", "parent", "web")); !ok {
		t.Errorf("no edge series")
	}
	if got := testutil.ToFloat64(w.errs); got != 0 {
		t.Errorf("write errors: got %v; want 0", got)
	}
	// A write at a time already written is refused by the TSDB, counted, and
	// says so.
	if err := w.Write(context.Background(), t0); err == nil {
		t.Errorf("a write older than the last one: got no error")
	}
	if got := testutil.ToFloat64(w.errs); got == 0 {
		t.Errorf("write errors after an out-of-order write: got 0")
	}
}

func TestWriterRunStops(t *testing.T) {
	db := openTSDB(t)
	a := New(Options{})
	a.Observe([]vmodel.Span{span("cart", "GET /cart", vmodel.SpanKindServer, true, 1, 0, 0)})
	w := NewWriter(WriterOptions{Interval: time.Millisecond}, a, db)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ls := labels.FromStrings(prommodel.MetricNameLabel, CallsMetric, "service_name", "cart", "span_name", "GET /cart", "span_kind", "SPAN_KIND_SERVER", "status_code", "STATUS_CODE_UNSET")
	if _, v, ok := lastSample(t, db, ls); !ok || v != 1 {
		t.Errorf("%s: got %v (stored %v); want 1", ls, v, ok)
	}
}

// TestWriteWhileObserving: the ingester observes while the writer
// gathers; run with -race. Every write commits, and the last one holds
// every span observed before it.
func TestWriteWhileObserving(t *testing.T) {
	db := openTSDB(t)
	a := New(Options{})
	w := NewWriter(WriterOptions{}, a, db)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			a.Observe([]vmodel.Span{span("cart", "op"+strconv.Itoa(i%7), vmodel.SpanKindServer, true, float64(i), uint8(i%3), 1)})
			a.ObserveEdge("web", "cart", time.Millisecond, i%2 == 0)
		}
	}()
	t0 := time.Now()
	for i := range 20 {
		if err := w.Write(context.Background(), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if err := w.Write(context.Background(), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, v, ok := lastSample(t, db, labels.FromStrings(prommodel.MetricNameLabel, EdgeCallsMetric, "child", "cart", "parent", "web")); !ok || v != 200 {
		t.Errorf("edge calls web → cart: got %v (stored %v); want 200", v, ok)
	}
}

// BenchmarkWrite: one write of 1,000 label sets (about 21 samples each:
// the counter, 17 buckets, sum, count and the native histogram) into a
// TSDB.
func BenchmarkWrite(b *testing.B) {
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	a := New(Options{})
	var spans []vmodel.Span
	for i := range 1000 {
		spans = append(spans, span("svc"+strconv.Itoa(i%50), "op"+strconv.Itoa(i), vmodel.SpanKindServer, false, float64(i%500), 0, 1))
	}
	a.Observe(spans)
	w := NewWriter(WriterOptions{}, a, db)
	t0 := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := w.Write(context.Background(), t0.Add(time.Duration(i)*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(testutil.ToFloat64(w.samples)/b.Elapsed().Seconds(), "samples/s")
}

// Each tenant's spans are counted in series of its own: the default
// tenant's without the tenant label, as always, another's with it.
func TestTenantSeries(t *testing.T) {
	db := openTSDB(t)
	a := New(Options{})
	w := NewWriter(WriterOptions{}, a, db)
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	one := []vmodel.Span{span("cart", "GET /cart", vmodel.SpanKindServer, false, 5, 0, 1)}
	a.ObserveTenant("team-a", one)
	a.ObserveTenant("team-a", one)
	a.ObserveTenant("default", one)
	a.Observe(one)
	a.ObserveTenant("team-b", one)
	a.ObserveEdgeTenant("team-a", "web", "cart", 20*time.Millisecond, false)
	if err := w.Write(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	base := []string{prommodel.MetricNameLabel, CallsMetric, "service_name", "cart", "span_name", "GET /cart", "span_kind", "SPAN_KIND_SERVER", "status_code", "STATUS_CODE_UNSET", "grade", "1"}
	for _, c := range []struct {
		extra []string
		want  float64
	}{
		{nil, 2},
		{[]string{LabelTenant, "team-a"}, 2},
		{[]string{LabelTenant, "team-b"}, 1},
	} {
		ls := labels.FromStrings(append(append([]string{}, base...), c.extra...)...)
		if _, v, ok := lastSample(t, db, ls); !ok || v != c.want {
			t.Errorf("%s: %v (found %v); want %v", ls, v, ok, c.want)
		}
	}
	if _, _, ok := lastSample(t, db, labels.FromStrings(prommodel.MetricNameLabel, EdgeCallsMetric, "child", "cart", "parent", "web", LabelTenant, "team-a")); !ok {
		t.Errorf("no edge series of team-a")
	}
	if _, _, ok := lastSample(t, db, labels.FromStrings(prommodel.MetricNameLabel, EdgeCallsMetric, "child", "cart", "parent", "web")); ok {
		t.Errorf("team-a's edge counted for the default tenant")
	}
}
