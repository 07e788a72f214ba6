package dump

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// BenchmarkPanicReport measures building one panic report — every
// goroutine's stack taken and parsed, the event built and encoded — with
// n goroutines parked besides the benchmark's own; /spooled adds writing
// it to the spool (fsync included).
func BenchmarkPanicReport(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		stop := make(chan struct{})
		for range n {
			go func() { <-stop }()
		}
		rep, err := New(Options{
			DSN: "http://k@127.0.0.1:1/1", SpoolDir: b.TempDir(), Service: "bench",
			DisableCrashOutput: true, MaxSpoolBytes: 8 << 20,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest("GET", "http://shop.example/items/42", nil)
		req.Header.Set("Authorization", "Bearer x")
		var size int
		b.Run(fmt.Sprintf("goroutines=%d/build", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev := rep.panicEvent(context.Background(), "boom", nil, req)
				p, err := rep.marshalBounded(ev)
				if err != nil {
					b.Fatal(err)
				}
				size = len(p)
			}
			b.ReportMetric(float64(size), "event-bytes")
		})
		b.Run(fmt.Sprintf("goroutines=%d/spooled", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rep.Recovered(context.Background(), "boom", nil, req)
			}
		})
		rep.cancel() // no delivery attempts to measure
		rep.Close()
		close(stop)
	}
}
