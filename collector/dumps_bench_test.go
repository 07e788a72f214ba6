package collector

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// BenchmarkDumpsIntake measures events per second through the intake's
// handler (auth, envelope reading, conversion, JSON encoding) into a real
// disk queue, each request answered only once its event is durable. The
// event is sentry-go's panic envelope. Parallel runs requests at once, as
// many services reporting do.
func BenchmarkDumpsIntake(b *testing.B) {
	body, err := os.ReadFile("../internal/sentry/testdata/envelopes/sentry-go-panic.envelope")
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, parallel bool) {
		dc := newDumpsCollector(b, keyed("pubkey"), nil)
		mux := http.NewServeMux()
		dc.c.dumps.register(mux)
		one := func() {
			req := httptest.NewRequest("POST", "/api/42/envelope/", bytes.NewReader(body))
			req.Header.Set("X-Sentry-Auth", "Sentry sentry_version=7, sentry_key=pubkey")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("got %d %s", w.Code, w.Body)
			}
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		if parallel {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					one()
				}
			})
		} else {
			for b.Loop() {
				one()
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}
