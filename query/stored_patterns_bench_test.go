//go:build unix

package query

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/patterns"
)

// BenchmarkStoredPatterns measures /loki/api/v1/patterns answered from
// patterns mined at ingest: VIGIL_QUERY_BENCH_LINES lines (default
// 10,000,000) written over the last hour through the mining store to an
// embedded store, 50 services × 4 hosts × the templates' levels (800
// streams), flushed once per minute of line time as the daemon flushes
// once a minute. It reports the mining cost per line written ("mine
// ns/line", the wall time of writing with mining minus without, over a
// 200,000-line sample), then times requests for one service and for
// every stream.
func BenchmarkStoredPatterns(b *testing.B) {
	n := benchLines(b, 10_000_000)
	dir := b.TempDir()
	open := func() *logstore.Store {
		s, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	end := time.Now().UnixNano()
	start := end - int64(time.Hour)
	s := patterns.NewStore(open(), patterns.Options{})
	t0 := time.Now()
	writeMined(b, s, n, start, end)
	b.Logf("wrote and mined %d lines in %v", n, time.Since(t0))
	// Restart: the answers come from the files alone.
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	backend := open()
	defer backend.Close()
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	api := NewAPI(o, patterns.NewStore(backend, patterns.Options{}))
	api.RegisterHTTP(mux)
	// The first request after a restart reads and decodes the files.
	first := time.Now()
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/loki/api/v1/patterns?"+url.Values{"query": {`{source="bench"}`},
		"start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}, "step": {"60s"}}.Encode(), nil))
	if w.Code != 200 {
		b.Fatalf("%d %s", w.Code, w.Body)
	}
	b.Logf("first request after the restart: %v, %d bytes", time.Since(first), w.Body.Len())
	benchPatternRequests(b, mux, start, end)
}

// BenchmarkMiningOverhead writes the same batches of lines to an embedded
// store with and without mining at ingest; the difference of ns/line is
// what mining costs the write path.
func BenchmarkMiningOverhead(b *testing.B) {
	const n = 200_000
	end := time.Now().UnixNano()
	start := end - int64(time.Minute)
	var batches [][]model.LogRecord
	genBenchLines(n, start, end, 50, 4, rand.New(rand.NewPCG(3, 4)), func(recs []model.LogRecord, _ bool) {
		batches = append(batches, append([]model.LogRecord(nil), recs...))
	})
	for _, mine := range []bool{false, true} {
		name := "plain"
		if mine {
			name = "mined"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				ls, err := logstore.Open(logstore.Options{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				var w interface {
					Write(context.Context, []model.LogRecord) error
				} = ls
				if mine {
					w = patterns.NewStore(ls, patterns.Options{})
				}
				b.StartTimer()
				for _, recs := range batches {
					if err := w.Write(ctx, recs); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				ls.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/line")
		})
	}
}

// patternsOnly is an Elasticsearch store whose log writes are dropped, so
// that a benchmark mines and keeps the patterns of millions of lines
// without the hour it takes to index the lines themselves.
type patternsOnly struct{ *esstore.Store }

func (patternsOnly) Write(context.Context, []model.LogRecord) error { return nil }

// BenchmarkStoredPatternsES is BenchmarkStoredPatterns with the patterns
// in Elasticsearch (VIGIL_TEST_ES), as the distributed query process
// reads them. The lines are mined but not indexed (see patternsOnly).
func BenchmarkStoredPatternsES(b *testing.B) {
	n := benchLines(b, 10_000_000)
	o := esstore.DefaultOptions()
	o.URLs = []string{estest.URL(b)}
	o.IndexPrefix = fmt.Sprintf("vigilbench-%08x-logs-", rand.Uint32())
	o.Replicas, o.Retention = 0, 0
	o.Logger = slog.New(slog.DiscardHandler)
	es, err := esstore.Open(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	base := o.IndexPrefix[:len(o.IndexPrefix)-len("logs-")]
	defer func() {
		for _, p := range []string{base + "patterns-*", "_index_template/" + base + "logs", "_index_template/" + base + "patterns"} {
			req, _ := http.NewRequest(http.MethodDelete, o.URLs[0]+"/"+p, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		es.Close()
	}()
	ctx := context.Background()
	end := time.Now().UnixNano()
	start := end - int64(time.Hour)
	s := patterns.NewStore(patternsOnly{es}, patterns.Options{})
	t0 := time.Now()
	writeMined(b, s, n, start, end)
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err := es.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("mined %d lines into Elasticsearch in %v", n, time.Since(t0))
	o2 := DefaultOptions()
	o2.Logger = slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	NewAPI(o2, es).RegisterHTTP(mux) // a query process: no miner of its own
	benchPatternRequests(b, mux, start, end)
}

// writeMined writes n bench lines over [start, end) through s, 50
// services × 4 hosts, flushing once per minute of line time as the daemon
// flushes once a minute.
func writeMined(b *testing.B, s *patterns.Store, n int, start, end int64) {
	ctx := context.Background()
	genBenchLines(n, start, end, 50, 4, rand.New(rand.NewPCG(3, 4)), func(recs []model.LogRecord, minuteDone bool) {
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
		if minuteDone {
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
