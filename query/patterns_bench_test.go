//go:build unix

package query

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
)

// BenchmarkPatterns measures /loki/api/v1/patterns over an embedded store
// of VIGIL_QUERY_BENCH_LINES lines (default 1,000,000) written over the
// last hour: 10 services, each line from one of 12 templates with varying
// values. "service" asks for one service (a tenth of the lines), as Logs
// Drilldown does; "all" for every line, which mines the newest 200,000.
func BenchmarkPatterns(b *testing.B) {
	n := benchLines(b, 1_000_000)
	dir := b.TempDir()
	s, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	end := time.Now().UnixNano()
	start := end - int64(time.Hour)
	writeBenchLines(b, s, n, start, end)
	// Reopen, so that the store's head is written out as blocks and no
	// flush runs while the requests are timed.
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if s, err = logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	NewAPI(o, s).RegisterHTTP(mux)
	benchPatternRequests(b, mux, start, end)
}

// benchLines returns VIGIL_QUERY_BENCH_LINES, else def.
func benchLines(b *testing.B, def int) int {
	v := os.Getenv("VIGIL_QUERY_BENCH_LINES")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// benchPatternRequests times /patterns over [start, end) with step=60s:
// "service" asks for one service, "all" for every line.
func benchPatternRequests(b *testing.B, mux http.Handler, start, end int64) {
	for _, c := range []struct{ name, query string }{
		{"service", `{service="svc-3"}`},
		{"all", `{source="bench"}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			v := url.Values{"query": {c.query}, "start": {strconv.FormatInt(start, 10)},
				"end": {strconv.FormatInt(end, 10)}, "step": {"60s"}}
			req := httptest.NewRequest(http.MethodGet, "/loki/api/v1/patterns?"+v.Encode(), nil)
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			// CPU time per request: on a shared machine wall time also
			// counts the time other processes held the cores.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// cpuTime returns the CPU time the process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchTemplates = []func(r *rand.Rand) string{
	func(r *rand.Rand) string {
		return "level=info msg=\"request served\" method=GET path=/api/v1/users/" + strconv.Itoa(r.IntN(1e6)) + " status=200 took=" + strconv.Itoa(r.IntN(900)) + "ms"
	},
	func(r *rand.Rand) string {
		return "level=info msg=\"request served\" method=POST path=/api/v1/orders status=201 took=" + strconv.Itoa(r.IntN(900)) + "ms"
	},
	func(r *rand.Rand) string {
		return "level=error msg=\"upstream failed\" upstream=db-" + strconv.Itoa(r.IntN(5)) + " err=\"connection refused\""
	},
	func(r *rand.Rand) string {
		return `{"level":"info","msg":"cache hit","key":"user:` + strconv.Itoa(r.IntN(1e5)) + `","ttl":` + strconv.Itoa(r.IntN(3600)) + `}`
	},
	func(r *rand.Rand) string {
		return `{"level":"warn","msg":"slow query","table":"orders","rows":` + strconv.Itoa(r.IntN(1e4)) + `,"took_ms":` + strconv.Itoa(r.IntN(5000)) + `}`
	},
	func(r *rand.Rand) string {
		return "GET /static/app." + strconv.FormatUint(r.Uint64(), 16) + ".js HTTP/1.1 200 " + strconv.Itoa(r.IntN(1e6))
	},
	func(r *rand.Rand) string {
		return "worker " + strconv.Itoa(r.IntN(64)) + " picked job " + strconv.Itoa(r.IntN(1e7))
	},
	func(r *rand.Rand) string {
		return "worker " + strconv.Itoa(r.IntN(64)) + " finished job " + strconv.Itoa(r.IntN(1e7)) + " in " + strconv.Itoa(r.IntN(100)) + "s"
	},
	func(r *rand.Rand) string {
		return "user " + strconv.Itoa(r.IntN(1e4)) + " logged in from 10.0." + strconv.Itoa(r.IntN(256)) + ".7"
	},
	func(r *rand.Rand) string { return "health check ok" },
	func(r *rand.Rand) string {
		return "level=debug msg=\"gc done\" heap_mb=" + strconv.Itoa(r.IntN(4096)) + " pause_us=" + strconv.Itoa(r.IntN(900))
	},
	func(r *rand.Rand) string {
		return "panic: runtime error: index out of range [" + strconv.Itoa(r.IntN(10)) + "] with length " + strconv.Itoa(r.IntN(10))
	},
}

func writeBenchLines(b *testing.B, s *logstore.Store, n int, start, end int64) {
	b.Helper()
	genBenchLines(n, start, end, 10, 3, rand.New(rand.NewPCG(1, 2)), func(recs []model.LogRecord, _ bool) {
		if err := s.Write(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	})
}

// genBenchLines generates n lines evenly over [start, end) in batches of
// 10,000 from the bench templates, over services "svc-<i>" and hosts
// "h<i>"; emit learns when a minute of line time ended with the batch.
// The batch is reused after emit returns.
func genBenchLines(n int, start, end int64, services, hosts int, r *rand.Rand, emit func(recs []model.LogRecord, minuteDone bool)) {
	levels := []string{"info", "info", "error", "info", "warn", "info", "info", "info", "info", "info", "debug", "error"}
	svc := make([]string, services)
	for i := range svc {
		svc[i] = "svc-" + strconv.Itoa(i)
	}
	hostNames := make([]string, hosts)
	for i := range hostNames {
		hostNames[i] = "h" + strconv.Itoa(i)
	}
	const batch = 10_000
	recs := make([]model.LogRecord, 0, batch)
	minute := start / int64(time.Minute)
	for i := 0; i < n; i++ {
		t := r.IntN(len(benchTemplates))
		var id model.RecordID
		id[0], id[1], id[2], id[3], id[4] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 0xbe
		ts := start + int64(i)*(end-start)/int64(n)
		recs = append(recs, model.LogRecord{ID: id, Timestamp: ts, ObservedTimestamp: ts,
			Service: svc[i%services], Level: levels[t], Host: hostNames[(i/services)%hosts], Source: "bench",
			Message: benchTemplates[t](r)})
		if len(recs) == batch || i == n-1 {
			m := ts / int64(time.Minute)
			emit(recs, m != minute || i == n-1)
			minute = m
			recs = recs[:0]
		}
	}
}
