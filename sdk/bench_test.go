package sdk

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// discardWriter is a ResponseWriter that costs nothing, so that the
// benchmarks measure the instrumentation.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	return mux
}

func runHandler(b *testing.B, h http.Handler, header ...string) {
	b.Helper()
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest("GET", "/users/42", nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkMiddleware measures what HTTPMiddleware adds to a request
// through a ServeMux, against the bare mux and against client_golang's
// promhttp instrumentation of the same three signals (requests, duration
// histogram, in-flight), in the same run.
func BenchmarkMiddleware(b *testing.B) {
	b.Run("bare", func(b *testing.B) { runHandler(b, benchMux()) })
	b.Run("promhttp", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total"}, []string{"code", "method"})
		dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "duration_seconds", Buckets: prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1}, []string{"code", "method"})
		inflight := prometheus.NewGauge(prometheus.GaugeOpts{Name: "inflight"})
		reg.MustRegister(reqs, dur, inflight)
		h := promhttp.InstrumentHandlerInFlight(inflight, promhttp.InstrumentHandlerDuration(dur, promhttp.InstrumentHandlerCounter(reqs, benchMux())))
		runHandler(b, h)
	})
	b.Run("sdk-metrics", func(b *testing.B) {
		initTest(b, Config{TracesDisabled: true, LogOutput: &discardWriter{}})
		runHandler(b, HTTPMiddleware(benchMux()))
	})
	b.Run("sdk-traced-sampled", func(b *testing.B) {
		sk := newSink(b)
		initTest(b, Config{Collector: sk.srv.URL, LogOutput: &discardWriter{}})
		runHandler(b, HTTPMiddleware(benchMux()))
	})
	b.Run("sdk-traced-incoming-traceparent", func(b *testing.B) {
		sk := newSink(b)
		initTest(b, Config{Collector: sk.srv.URL, LogOutput: &discardWriter{}})
		runHandler(b, HTTPMiddleware(benchMux()), "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	})
	b.Run("sdk-traced-unsampled", func(b *testing.B) {
		sk := newSink(b)
		initTest(b, Config{Collector: sk.srv.URL, SampleRate: Float64(0), LogOutput: &discardWriter{}})
		runHandler(b, HTTPMiddleware(benchMux()))
	})
}
