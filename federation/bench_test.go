package federation

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// BenchmarkRemoteWrite: samples/s taken by remote write 1.0 over loopback,
// Vigil beside the real Prometheus (--web.enable-remote-write-receiver),
// the same requests to both: 1,000 series of 10 samples each. vigil runs
// with its default limits (DefaultLimits), vigil-nolimits with none: the
// overload protection must not slow well-behaved clients.
func BenchmarkRemoteWrite(b *testing.B) {
	const series, perSeries = 1000, 10
	start := time.Now().Add(-time.Hour).UnixMilli()
	body := func(iter int) []byte { return benchWriteBody(b, start, iter, series, perSeries) }
	next := 0 // every request has later samples than the one before
	run := func(b *testing.B, url string) {
		bodies := make([][]byte, b.N)
		for i := range bodies {
			bodies[i] = body(next)
			next++
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if code, msg := postRemoteWrite(b, url, bodies[i]); code/100 != 2 {
				b.Fatalf("%s: %d %s", url, code, msg)
			}
		}
		b.ReportMetric(float64(b.N*series*perSeries)/b.Elapsed().Seconds(), "samples/s")
	}
	vigil, prom := startFed(b, b.TempDir(), "").url, startPrometheus(b, "global: {scrape_interval: 1m}\n", "--web.enable-remote-write-receiver")
	unlimited := startFedWith(b, b.TempDir(), "", func(o *Options) { o.Limits = Limits{} }).url
	b.Run("vigil", func(b *testing.B) { run(b, vigil) })
	b.Run("vigil-nolimits", func(b *testing.B) { run(b, unlimited) })
	b.Run("prometheus", func(b *testing.B) { run(b, prom) })
}

// BenchmarkPushGuard: the remote-write handler in-process (no network, no
// other server), with the default limits and with none, on alternating
// runs: what the overload protection costs a well-behaved client.
func BenchmarkPushGuard(b *testing.B) {
	const series, perSeries = 1000, 10
	start := time.Now().Add(-time.Hour).UnixMilli()
	for _, c := range []struct {
		name   string
		limits Limits
	}{{"limits", DefaultLimits()}, {"nolimits", Limits{}}} {
		b.Run(c.name, func(b *testing.B) {
			fed := startFedWith(b, b.TempDir(), "", func(o *Options) { o.Limits = c.limits })
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = benchWriteBody(b, start, i, series, perSeries)
			}
			mux := http.NewServeMux()
			fed.RegisterHTTP(mux)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest("POST", "/api/v1/write", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/x-protobuf")
				req.Header.Set("Content-Encoding", "snappy")
				req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code/100 != 2 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.N*series*perSeries)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// benchWriteBody is a snappy remote-write 1.0 request of series series of
// perSeries samples each, 1 ms apart, later than those of iter-1.
func benchWriteBody(b *testing.B, start int64, iter, series, perSeries int) []byte {
	base := start + int64(iter*perSeries)
	ts := make([]prompb.TimeSeries, series)
	for s := range ts {
		ts[s].Labels = []prompb.Label{{Name: "__name__", Value: "vigil_bench_requests_total"},
			{Name: "instance", Value: fmt.Sprintf("host-%d:9100", s%100)}, {Name: "job", Value: "bench"},
			{Name: "route", Value: fmt.Sprintf("/r/%d", s/100)}}
		for i := range perSeries {
			ts[s].Samples = append(ts[s].Samples, prompb.Sample{Timestamp: base + int64(i), Value: float64(iter*perSeries + i)})
		}
	}
	m, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return snappy.Encode(nil, m)
}
