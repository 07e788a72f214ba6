package query

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
)

// BenchmarkIndexVolume measures Logs Drilldown's landing page call,
// index/volume of {service_name=~".+"} over the last hour, against an
// embedded store of VIGIL_QUERY_BENCH_LINES lines (default 1,000,000) of
// 20 services, written and reopened before the clock starts.
func BenchmarkIndexVolume(b *testing.B) {
	lines := 1_000_000
	if v := os.Getenv("VIGIL_QUERY_BENCH_LINES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		lines = n
	}
	dir := b.TempDir()
	opts := logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}
	s, err := logstore.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	end := time.Now().UnixNano()
	start := end - int64(time.Hour)
	levels := []string{"info", "info", "info", "warn", "error", "debug"}
	batch := make([]model.LogRecord, 0, 1000)
	for i := 0; i < lines; i++ {
		batch = append(batch, model.LogRecord{
			ID:        model.RecordID{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24), 1},
			Timestamp: start + int64(i)*(int64(time.Hour)/int64(lines)), ObservedTimestamp: end,
			Service: "svc-" + strconv.Itoa(i%20), Level: levels[i%len(levels)], Host: "h" + strconv.Itoa(i%5), Source: "otlp",
			Message: `level=info msg="request served" path=/api/v1/items/` + strconv.Itoa(i%1000) + ` status=200 took=12ms`,
		})
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
	defer s.Close()
	mux := http.NewServeMux()
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	NewAPI(o, s).RegisterHTTP(mux)
	q := url.Values{"query": {`{service_name=~".+"}`}, "limit": {"5000"},
		"start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}}
	req := httptest.NewRequest(http.MethodGet, "/loki/api/v1/index/volume?"+q.Encode(), nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(lines), "lines")
}
