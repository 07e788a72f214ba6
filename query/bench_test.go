package query

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// BenchmarkIndexVolume measures Logs Drilldown's landing page call,
// index/volume of {service_name=~".+"} over the last hour, and
// volume_range and index/stats over the same lines, against an embedded
// store of VIGIL_QUERY_BENCH_LINES lines (default 10,000,000) of 100
// services × 5 levels, written straight into the store and reopened
// before the clock starts. The scan sub-benchmarks hide the store's
// statistics, as before the store kept them: the API reads every line.
func BenchmarkIndexVolume(b *testing.B) {
	lines := benchLines(b, 10_000_000)
	s, start, end := benchStore(b, lines, benchRecord)
	benchIndexEndpoints(b, s, start, end, lines)
}

// BenchmarkUnwrapQuantile is quantile_over_time over a label unwrapped
// from every line, grouped by service, over VIGIL_QUERY_BENCH_LINES lines
// (default 10,000,000) of an embedded store: as Grafana asks for a p99
// latency panel, one instant query whose window holds every line, through
// the Loki API. The store is written and reopened before the clock starts.
func BenchmarkUnwrapQuantile(b *testing.B) {
	lines := benchLines(b, 10_000_000)
	s, _, end := benchStore(b, lines, func(i, n int, start, end int64) model.LogRecord {
		r := benchRecord(i, n, start, end)
		r.Message = `level=info msg="request served" path=/api/v1/items/` + strconv.Itoa(i%1000) +
			` status=200 latency_ms=` + strconv.Itoa(i%977) + `.` + strconv.Itoa(i%10)
		return r
	})
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	o.Timeout = time.Hour
	mux := http.NewServeMux()
	NewAPI(o, s).RegisterHTTP(mux)
	q := url.Values{
		"query": {`quantile_over_time(0.99, {service_name=~".+"} | logfmt | unwrap latency_ms [2h]) by (service_name)`},
		"time":  {strconv.FormatInt(end, 10)},
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/loki/api/v1/query?"+q.Encode(), nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 || strings.Count(w.Body.String(), `"service_name"`) != 100 {
			b.Fatalf("%d %.500s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(lines), "lines")
}

// benchStore writes lines records made by rec, spread over the hour
// before now, into a new embedded store, and reopens it so that every
// line is in a block.
func benchStore(b *testing.B, lines int, rec func(i, n int, start, end int64) model.LogRecord) (s *logstore.Store, start, end int64) {
	b.Helper()
	dir := b.TempDir()
	opts := logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}
	s, err := logstore.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	end = time.Now().UnixNano()
	start = end - int64(time.Hour)
	batch := make([]model.LogRecord, 0, 10000)
	for i := 0; i < lines; i++ {
		batch = append(batch, rec(i, lines, start, end))
		if len(batch) == cap(batch) || i == lines-1 {
			if err := s.Write(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if s, err = logstore.Open(opts); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	b.Logf("%d blocks", s.Stats().Blocks)
	return s, start, end
}

// BenchmarkIndexVolumeES is BenchmarkIndexVolume against Elasticsearch
// (VIGIL_TEST_ES), over VIGIL_QUERY_BENCH_ES_LINES lines (default
// 1,000,000) of the same 500 streams, written through the store and
// refreshed before the clock starts. The indices are deleted at the end.
func BenchmarkIndexVolumeES(b *testing.B) {
	lines := 1_000_000
	if v := os.Getenv("VIGIL_QUERY_BENCH_ES_LINES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		lines = n
	}
	end := time.Now().Truncate(time.Millisecond).UnixNano()
	start := end - int64(time.Hour)
	s, o := esStoreWith(b, nil)
	ctx := context.Background()
	recs := make([]model.LogRecord, 0, 20000)
	for i := 0; i < lines; i++ {
		recs = append(recs, benchRecord(i, lines, start, end))
		if len(recs) == cap(recs) || i == lines-1 {
			if err := s.Write(ctx, recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := s.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	// Nothing is written while the clock runs, so Elasticsearch's shard
	// request cache would answer every call after the first: measure
	// the aggregations themselves.
	req, _ := http.NewRequest(http.MethodPut, o.URLs[0]+"/"+o.IndexPrefix+"*/_settings",
		strings.NewReader(`{"index":{"requests":{"cache":{"enable":false}}}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("disabling the request cache: %s", resp.Status)
	}
	benchIndexEndpoints(b, s, start, end, lines)
}

// benchRecord is line i of n in [start, end): 100 services × 5 levels.
func benchRecord(i, n int, start, end int64) model.LogRecord {
	levels := []string{"info", "warn", "error", "debug", "trace"}
	return model.LogRecord{
		ID:        model.RecordID{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24), 1},
		Timestamp: start + int64(i)*((end-start)/int64(n)), ObservedTimestamp: end,
		Service: "svc-" + strconv.Itoa(i%100), Level: levels[i/100%len(levels)], Source: "otlp",
		Message: `level=info msg="request served" path=/api/v1/items/` + strconv.Itoa(i%1000) + ` status=200 took=12ms`,
	}
}

// benchIndexEndpoints runs the index endpoints over s, whose lines lie in
// [start, end), from its statistics and by reading every line.
func benchIndexEndpoints(b *testing.B, s storage.LogReader, start, end int64, lines int) {
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	stats, scan := http.NewServeMux(), http.NewServeMux()
	NewAPI(o, s).RegisterHTTP(stats)
	NewAPI(o, scanOnly{s}).RegisterHTTP(scan)
	// Each call's range ends 1 ms later than the previous one's, past the
	// last line, as Grafana's "now" moves.
	call := 0
	path := func(endpoint string, step bool) string {
		call++
		q := url.Values{"query": {`{service_name=~".+"}`}, "limit": {"5000"},
			"start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end+int64(call)*1e6, 10)}}
		if step {
			q.Set("step", "60")
		}
		return "/loki/api/v1/" + endpoint + "?" + q.Encode()
	}
	for _, endpoint := range []string{"volume", "volume_range", "stats"} {
		for _, m := range []struct {
			name string
			mux  *http.ServeMux
		}{{"stats", stats}, {"scan", scan}} {
			b.Run(endpoint+"/"+m.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, path("index/"+endpoint, endpoint == "volume_range"), nil)
					w := httptest.NewRecorder()
					m.mux.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
				b.ReportMetric(float64(lines), "lines")
			})
		}
	}
}
