package diskqueue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/queue"
)

// fsyncs returns how many fsyncs the queue registered on reg has made.
func fsyncs(b *testing.B, reg *prometheus.Registry) float64 {
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, mf := range families {
		if mf.GetName() == "vigil_queue_fsync_duration_seconds" {
			for _, m := range mf.GetMetric() {
				n += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return n
}

// publishConcurrently publishes n values from publishers goroutines.
func publishConcurrently(b *testing.B, p queue.Producer, publishers, n int, value []byte) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for i := range publishers {
		key := fmt.Sprintf("p%d", i)
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := p.Publish(context.Background(), key, value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkPublish measures durable publishing of 64 KiB batches; with
// several publishers, group commit shares fsyncs between them.
func BenchmarkPublish(b *testing.B) {
	value := make([]byte, 64<<10)
	for _, publishers := range []int{1, 8} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			q := mustOpen(b, b.TempDir(), func(o *Options) { o.MaxBytes = 1 << 50; o.Registerer = reg })
			defer mustClose(b, q)
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			publishConcurrently(b, q, publishers, b.N, value)
			b.StopTimer()
			b.ReportMetric(fsyncs(b, reg)/float64(b.N), "fsyncs/op")
		})
	}
}

// BenchmarkFetchCommit measures consuming 1 KiB batches, committing every
// message or every 100th.
func BenchmarkFetchCommit(b *testing.B) {
	value := make([]byte, 1<<10)
	for _, every := range []int{1, 100} {
		b.Run(fmt.Sprintf("commit-every=%d", every), func(b *testing.B) {
			q := mustOpen(b, b.TempDir(), func(o *Options) { o.MaxBytes = 1 << 50 })
			defer mustClose(b, q)
			publishConcurrently(b, q, 64, b.N, value)
			ctx := context.Background()
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				m, err := q.Fetch(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if i%every == every-1 || i == b.N-1 {
					if err := q.Commit(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
