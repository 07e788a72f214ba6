package profiler

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigilhq/vigil/internal/queue"
)

// discardQueue takes every record at once: the benchmarks measure the
// profiler, not the queue's fsync.
type discardQueue struct{}

func (discardQueue) Publish(context.Context, string, []byte) error { return nil }

var _ queue.Producer = discardQueue{}

// BenchmarkIngest measures POST /ingest as pyroscope-go sends it
// (multipart, a real heap profile of this process): parsing, the pprof
// check and building the queue record. Reports profiles/s.
func BenchmarkIngest(b *testing.B) {
	p := New(DefaultOptions(), discardQueue{})
	mux := http.NewServeMux()
	p.RegisterHTTP(mux)
	ct, body := multipartBody(b, runtimePprof(b, "heap"), "")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodPost, "/ingest?name=bench%7Benv%3Dprod%7D&spyName=gospy", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "profiles/s")
}
