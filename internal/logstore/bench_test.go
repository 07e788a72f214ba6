package logstore

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Benchmarks. `make bench` runs them with the default sizes; the figures in
// docs/logstore.md come from the commands written there.
//
//	VIGIL_LOGSTORE_BENCH_LINES   lines in the store BenchmarkQuery builds (default 1,000,000)
//	VIGIL_LOGSTORE_BENCH_DIR     keep that store here and reuse it in later runs
//	VIGIL_LOGSTORE_BENCH_SETTLE  0: query the store as ingestion left it, not merged as a past day
//	VIGIL_LOGSTORE_BENCH_HEAD    head size in bytes (default 64 MiB)
//	VIGIL_LOGSTORE_BENCH_DEBUG   log the flusher's and merger's work to stderr

const benchBatch = 1000

// BenchmarkWrite measures Write alone from one goroutine, in batches of 1,000
// generated lines (generated before the clock starts), including the final
// Close that writes the head out, and the bytes the lines take on disk. Run
// it for a few million lines (-benchtime 3000x) so that the head is written
// out several times.
func BenchmarkWrite(b *testing.B) {
	// Lines of the last hours, as live ingestion writes (an old day would
	// also be recompressed once it is idle), at 10k lines/s of event time.
	recs := genRecords(42, b.N*benchBatch, time.Now().Add(-2*time.Hour).UnixNano(), 100_000)
	dir := b.TempDir()
	s, err := Open(benchOptions(dir))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := s.Write(ctx, recs[i*benchBatch:(i+1)*benchBatch]); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	lines := float64(b.N * benchBatch)
	b.ReportMetric(lines/elapsed.Seconds(), "lines/s")
	total, wal := dirBytes(b, dir), dirBytes(b, filepath.Join(dir, walDirName))
	b.ReportMetric(float64(total-wal)/lines, "data-B/line")
	b.ReportMetric(float64(wal)/1e6, "wal-MB")
}

// dirBytes returns the space the files under dir take on disk.
func dirBytes(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += allocatedBytes(fi)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkQuery builds a store of VIGIL_LOGSTORE_BENCH_LINES generated
// lines over one day (20 services × 4 levels × 4 hosts = 320 streams),
// reopens it so that every row is in blocks, and measures queries.
func BenchmarkQuery(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("VIGIL_LOGSTORE_BENCH_LINES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("VIGIL_LOGSTORE_BENCH_LINES: %v", err)
		}
	}
	dir := os.Getenv("VIGIL_LOGSTORE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	settle := os.Getenv("VIGIL_LOGSTORE_BENCH_SETTLE") != "0"
	marker := filepath.Join(dir, fmt.Sprintf("bench-%d-lines-settled-%v", n, settle))
	if _, err := os.Stat(marker); err != nil {
		buildBenchStore(b, dir, n, settle)
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st := s.Stats()
	wal := dirBytes(b, filepath.Join(dir, walDirName))
	b.Logf("store of %d lines (settled %v): %d blocks, %d partitions, %.1f bytes/line on disk in partitions, %.0f MB of WAL",
		n, settle, st.Blocks, st.Partitions, float64(st.DiskBytes-wal)/float64(n), float64(wal)/1e6)
	logColumnSizes(b, s, n)

	svc3 := []*model.LabelMatcher{mustMatcher(b, "service", model.MatchEqual, "svc-3")}
	anySvc := []*model.LabelMatcher{mustMatcher(b, "service", model.MatchRegexp, ".+")}
	for _, bc := range []struct {
		name  string
		p     storage.SelectParams
		limit int
	}{
		{"needle/svc-3", storage.SelectParams{Matchers: svc3, Contains: []string{rareNeedle}}, 0},
		{"needle/all-services", storage.SelectParams{Matchers: anySvc, Contains: []string{rareNeedle}}, 0},
		// No block holds "qzx": the cost of reading every bloom.
		{"absent/all-services", storage.SelectParams{Matchers: anySvc, Contains: []string{"qzxv"}}, 0},
		{"limit100-backward/svc-3", storage.SelectParams{Matchers: svc3, Backward: true}, 100},
		{"limit100-backward/svc-3-error", storage.SelectParams{Matchers: append(svc3, mustMatcher(b, "level", model.MatchEqual, "error")), Backward: true}, 100},
		// Every block holds the trigrams, few lines the string: a scan.
		{"fold-scan/svc-3", storage.SelectParams{Matchers: svc3, ContainsFold: []string{"get /API/v1/ORDERS/4242 "}}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := bc.p
			p.Start, p.End = all.Start, all.End
			scanned0, pruned0 := counterValue(s.m.blocksScanned), counterValue(s.m.blocksPruned)
			var rows int
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				rows = 0
				err := s.Select(context.Background(), p, func(*storage.Row) bool {
					rows++
					return bc.limit == 0 || rows < bc.limit
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows), "rows/op")
			b.ReportMetric((counterValue(s.m.blocksScanned)-scanned0)/float64(b.N), "scanned-blocks/op")
			b.ReportMetric((counterValue(s.m.blocksPruned)-pruned0)/float64(b.N), "bloom-skipped-blocks/op")
		})
	}
}

// benchOptions logs the flusher's work to stderr when
// VIGIL_LOGSTORE_BENCH_DEBUG is set.
func benchOptions(dir string) Options {
	o := Options{Dir: dir}
	if v := os.Getenv("VIGIL_LOGSTORE_BENCH_HEAD"); v != "" {
		t := defaultTuning()
		t.headBytes, _ = strconv.ParseInt(v, 10, 64)
		o.tune = &t
	}
	if os.Getenv("VIGIL_LOGSTORE_BENCH_DEBUG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

func mustMatcher(tb testing.TB, name string, op model.MatchOp, v string) *model.LabelMatcher {
	m, err := model.NewLabelMatcher(name, op, v)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// buildBenchStore writes n generated lines over one day in batches of 1,000.
// With settle, it then writes the head out and merges as the merger does
// once a day is over and idle, which is the state of every day but today;
// without, it leaves the store as ingestion left it.
func buildBenchStore(b *testing.B, dir string, n int, settle bool) {
	start := time.Now()
	s, err := Open(benchOptions(dir))
	if err != nil {
		b.Fatal(err)
	}
	g := newLineGen(1, day0, dayNs/int64(n))
	batch := make([]model.LogRecord, benchBatch)
	var writeTime time.Duration
	for done := 0; done < n; done += benchBatch {
		batch = batch[:min(benchBatch, n-done)]
		for i := range batch {
			g.next(&batch[i])
		}
		t := time.Now()
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		writeTime += time.Since(t)
	}
	if settle {
		if err := s.settle(time.Now().Add(sealIdle + time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a store of %d lines in %v (Write calls: %v, %.0f lines/s)", n, time.Since(start).Round(time.Millisecond),
		writeTime.Round(time.Millisecond), float64(n)/writeTime.Seconds())
}

// logColumnSizes logs where the bytes on disk go, per line.
func logColumnSizes(b *testing.B, s *Store, n int) {
	var sizes [numSimpleCols + numFramedCols]int64
	var bloom, rows, blocks int64
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.parts {
		for _, m := range p.blocks {
			bloom += int64(m.bloomLen)
			blocks++
			rows += int64(m.rows)
			hdr := make([]byte, min(int(m.colsLen), 4096))
			if _, err := p.data.ReadAt(hdr, m.off+int64(m.bloomLen)); err != nil {
				b.Fatal(err)
			}
			bc, err := parseColsHeader(hdr, int(m.colsLen))
			if err != nil {
				b.Fatal(err)
			}
			for c, r := range bc.simple {
				sizes[c] += int64(r.compLen)
			}
			for c, fr := range bc.framed {
				for _, r := range fr {
					sizes[numSimpleCols+c] += int64(r.compLen)
				}
			}
		}
	}
	per := func(v int64) string { return strconv.FormatFloat(float64(v)/float64(n), 'f', 1, 64) }
	b.Logf("bytes/line by column: ts %s, id %s, observed %s, truncated %s, message %s, trace %s, span %s, attributes %s, bloom %s; %.0f rows/block",
		per(sizes[colTS]), per(sizes[colID]), per(sizes[colObs]), per(sizes[colTrunc]),
		per(sizes[numSimpleCols+fcolMsg]), per(sizes[numSimpleCols+fcolTrace]), per(sizes[numSimpleCols+fcolSpan]),
		per(sizes[numSimpleCols+fcolAttrs]), per(bloom), float64(rows)/float64(max(blocks, 1)))
}
