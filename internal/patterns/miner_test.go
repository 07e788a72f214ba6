package patterns

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/drain"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

const t0 = int64(1_700_000_000_000_000_000) // a multiple of 10 s

func rec(service, level, msg string, ts int64) model.LogRecord {
	return model.LogRecord{Timestamp: ts, Service: service, Level: level, Source: "test", Message: msg}
}

// counts flattens records to "service level pattern @bucket" → lines.
func counts(recs []storage.PatternRecord) map[string]int64 {
	out := map[string]int64{}
	for _, r := range recs {
		for _, b := range r.Buckets {
			out[fmt.Sprintf("%s %s %s @%d", r.Labels.Get("service"), r.Level, r.Pattern, (b.T-t0)/storage.PatternBucket)] += b.Count
		}
	}
	return out
}

func TestMinerCountsPerStreamPatternAndBucket(t *testing.T) {
	m := NewMiner(Options{})
	m.Observe([]model.LogRecord{
		rec("api", "INFO", "user 1 logged in", t0),
		rec("api", "INFO", "user 2 logged in", t0+1e9),
		rec("api", "INFO", "user 3 logged in", t0+11e9),
		rec("db", "", "user 4 logged in", t0),
		rec("api", "info", "", t0), // empty: nothing to mine
	})
	got := counts(m.take())
	want := map[string]int64{
		"api info user <_> logged in @0": 2,
		"api info user <_> logged in @1": 1,
		"db unknown user 4 logged in @0": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v; want %v", got, want)
	}
	if got := m.take(); len(got) != 0 {
		t.Errorf("second take: got %v; want nothing, the counts were taken", got)
	}
	// The miners are kept: the pattern stays widened.
	m.Observe([]model.LogRecord{rec("api", "INFO", "user 9 logged in", t0+20e9)})
	if got, want := fmt.Sprint(counts(m.take())), "map[api info user <_> logged in @2:1]"; got != want {
		t.Errorf("after the take: got %s; want %s", got, want)
	}
}

// TestMinerBoundedUnderAbuse writes a new pattern on every line, on ever
// new streams, far apart in time: the miner's memory stays within its
// bounds and every line turned away is counted.
func TestMinerBoundedUnderAbuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := drain.DefaultConfig()
	d.MaxClusters, d.MaxLineLength = 5, 100
	m := NewMiner(Options{Drain: d, MaxStreams: 3, MaxBuckets: 4, Registerer: reg})
	var recs []model.LogRecord
	for i := range 1000 {
		// Distinct token counts: no two lines can share a cluster.
		msg := ""
		for j := 0; j <= i%40; j++ {
			msg += "w" + strconv.Itoa(i) + " "
		}
		recs = append(recs, rec("svc-"+strconv.Itoa(i%5), "info", msg[:min(len(msg), 99)], t0+int64(i%9)*storage.PatternBucket))
	}
	for i := range 20 { // one pattern over ever later buckets
		recs = append(recs, rec("svc-0", "info", "same line", t0+int64(i)*storage.PatternBucket))
	}
	recs = append(recs, rec("svc-0", "info", string(make([]byte, 101)), t0))
	m.Observe(recs)
	m.mu.Lock()
	if n := len(m.streams); n != 3 {
		t.Errorf("streams = %d; want MaxStreams (3)", n)
	}
	for _, s := range m.streams {
		if n := s.d.Len(); n > 5 {
			t.Errorf("clusters of %v = %d; want at most 5", s.labels, n)
		}
		for _, c := range s.d.Clusters() {
			if len(c.Counts) > 4 {
				t.Errorf("buckets of a pattern = %d; want at most 4", len(c.Counts))
			}
		}
	}
	if m.buckets > 3*5*4 {
		t.Errorf("buckets = %d; want at most streams × clusters × MaxBuckets", m.buckets)
	}
	m.mu.Unlock()
	var counted int64
	for _, r := range m.take() {
		for _, b := range r.Buckets {
			counted += b.Count
		}
	}
	dropped := 0.0
	for _, reason := range []string{"line_too_long", "max_streams", "max_buckets", "max_clusters"} {
		v := testutil.ToFloat64(m.m.dropped.WithLabelValues(reason))
		if v == 0 {
			t.Errorf("dropped_lines_total{reason=%q} = 0; want the abuse to hit that bound", reason)
		}
		dropped += v
	}
	if int64(dropped)+counted != int64(len(recs)) {
		t.Errorf("dropped %v + counted %d = %v; want every line accounted for (%d)", dropped, counted, int64(dropped)+counted, len(recs))
	}
}

func TestMinerForgetsIdleStreams(t *testing.T) {
	m := NewMiner(Options{IdleTimeout: time.Minute})
	now := time.Unix(0, t0)
	m.now = func() time.Time { return now }
	m.Observe([]model.LogRecord{rec("api", "info", "started", t0)})
	m.take()
	now = now.Add(2 * time.Minute)
	m.take()
	if n := len(m.streams); n != 0 {
		t.Errorf("streams after the idle timeout = %d; want 0", n)
	}
}

// fakeBackend keeps written patterns in memory and fails writes on demand;
// it reads no lines.
type fakeBackend struct {
	lineReader
	mu      sync.Mutex
	lines   int
	stored  []storage.PatternRecord
	failPat error
	closed  bool
}

type lineReader interface {
	storage.LogReader
	storage.StreamStatsReader
}

func (f *fakeBackend) Write(_ context.Context, recs []model.LogRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines += len(recs)
	return nil
}

func (f *fakeBackend) WritePatterns(_ context.Context, recs []storage.PatternRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPat != nil {
		return f.failPat
	}
	f.stored = append(f.stored, recs...)
	return nil
}

func (f *fakeBackend) ReadPatterns(_ context.Context, start, end int64, ms []*model.LabelMatcher, fn func(*storage.PatternRecord)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.stored {
		if model.MatchLabels(ms, f.stored[i].Labels) {
			fn(&f.stored[i])
		}
	}
	return nil
}

func (f *fakeBackend) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeBackend) Close() error                  { f.closed = true; return nil }

func readAll(t *testing.T, s storage.PatternReader, ms ...*model.LabelMatcher) map[string]int64 {
	t.Helper()
	var recs []storage.PatternRecord
	err := s.ReadPatterns(context.Background(), t0, t0+int64(time.Hour), ms, func(r *storage.PatternRecord) {
		recs = append(recs, *r)
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts(recs)
}

func TestStoreFlushesRetriesAndReadsPending(t *testing.T) {
	b := &fakeBackend{}
	s := NewStore(b, Options{})
	ctx := context.Background()
	if err := s.Write(ctx, []model.LogRecord{rec("api", "info", "health check ok", t0), rec("db", "warn", "slow query", t0)}); err != nil {
		t.Fatal(err)
	}
	api, _ := model.NewLabelMatcher("service", model.MatchEqual, "api")
	// Not flushed yet: the store answers from memory.
	if got, want := fmt.Sprint(readAll(t, s, api)), "map[api info health check ok @0:1]"; got != want {
		t.Errorf("before the flush: got %s; want %s", got, want)
	}
	b.failPat = errors.New("disk full")
	if err := s.Flush(ctx); err == nil {
		t.Fatal("Flush: got nil; want the backend's error")
	}
	if len(b.stored) != 0 {
		t.Fatalf("stored %v after a failed flush", b.stored)
	}
	if got, want := fmt.Sprint(readAll(t, s, api)), "map[api info health check ok @0:1]"; got != want {
		t.Errorf("after a failed flush: got %s; want %s (retained)", got, want)
	}
	b.failPat = nil
	if err := s.Write(ctx, []model.LogRecord{rec("api", "info", "health check ok", t0+1e9)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !b.closed {
		t.Error("Close did not close the backend")
	}
	if got, want := fmt.Sprint(counts(b.stored)), "map[api info health check ok @0:2 db warn slow query @0:1]"; got != want {
		t.Errorf("stored after Close: got %s; want %s", got, want)
	}
	if got, want := fmt.Sprint(readAll(t, s, api)), "map[api info health check ok @0:2]"; got != want {
		t.Errorf("read after Close: got %s; want %s, each line counted once", got, want)
	}
}

func TestStoreMinesOnlyAcceptedRecords(t *testing.T) {
	b := &rejectingBackend{fakeBackend: &fakeBackend{}}
	s := NewStore(b, Options{})
	err := s.Write(context.Background(), []model.LogRecord{rec("api", "info", "refused line", t0), rec("api", "info", "kept line", t0)})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write: got %v; want the backend's RejectedError", err)
	}
	if got, want := fmt.Sprint(counts(s.miner.take())), "map[api info kept line @0:1]"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

type rejectingBackend struct{ *fakeBackend }

func (r *rejectingBackend) Write(context.Context, []model.LogRecord) error {
	return &storage.RejectedError{Items: []storage.Rejection{{Index: 0, Reason: "mapping"}}}
}

// TestStoreRunFlushesPeriodically: Run hands the mined patterns to the
// backend every FlushInterval, without waiting for Close.
func TestStoreRunFlushesPeriodically(t *testing.T) {
	b := &fakeBackend{}
	s := NewStore(b, Options{FlushInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	if err := s.Write(ctx, []model.LogRecord{rec("api", "info", "tick", t0)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.stored)
		b.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %d records after 10 s of Run; want the 1 mined pattern", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestMinerMaxTotalBuckets(t *testing.T) {
	m := NewMiner(Options{MaxTotalBuckets: 5})
	var recs []model.LogRecord
	for i := range 8 {
		recs = append(recs, rec("svc-"+strconv.Itoa(i), "info", "same line", t0))
	}
	m.Observe(recs)
	if got := testutil.ToFloat64(m.m.dropped.WithLabelValues("max_buckets")); got != 3 {
		t.Errorf("dropped for max_buckets = %v; want 3 (8 streams, room for 5 buckets)", got)
	}
	if len(m.take()) != 5 || m.buckets != 0 {
		t.Errorf("after the take: buckets = %d; want 0, the room freed", m.buckets)
	}
	m.Observe(recs[:1])
	if got := len(m.take()); got != 1 {
		t.Errorf("after the flush: got %d records; want the new line counted", got)
	}
}
