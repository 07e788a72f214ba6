package federation

import (
	"fmt"
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
	body := func(iter int) []byte {
		base := start + int64(iter)*perSeries // 1 ms apart: never in the future
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
