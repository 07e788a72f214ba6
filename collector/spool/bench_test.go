package spool

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

// nopDownstream acknowledges every batch at once.
type nopDownstream struct{ n atomic.Int64 }

func (d *nopDownstream) Publish(context.Context, string, []byte) error {
	d.n.Add(1)
	return nil
}

const benchBatch = 256 << 10

// BenchmarkPublish measures Publish of 256 KiB batches into the spool
// (one fsync'ed append each, shared between concurrent publishers) while
// Run forwards them to a no-op downstream.
func BenchmarkPublish(b *testing.B) {
	for _, publishers := range []int{1, 4} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			down := &nopDownstream{}
			s, err := openSpool(testOptions(b.TempDir()), down)
			if err != nil {
				b.Fatal(err)
			}
			defer mustClose(b, s)
			startRun(b, s)
			value := make([]byte, benchBatch)
			b.SetBytes(benchBatch)
			b.ReportAllocs()
			b.SetParallelism(max(1, publishers/2)) // GOMAXPROCS is 2 here; see docs/BENCHMARKS.md
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Publish(context.Background(), "svc", value); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkEndToEnd measures batches per second from Publish into the spool
// to acknowledgement by a no-op downstream: 4 publishers of 256 KiB
// batches, timed until the last one is forwarded.
func BenchmarkEndToEnd(b *testing.B) {
	down := &nopDownstream{}
	s, err := openSpool(testOptions(b.TempDir()), down)
	if err != nil {
		b.Fatal(err)
	}
	defer mustClose(b, s)
	startRun(b, s)
	value := make([]byte, benchBatch)
	b.SetBytes(benchBatch)
	b.ReportAllocs()
	b.SetParallelism(2)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Publish(context.Background(), "svc", value); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for down.n.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "batches/s")
}

// nopBatchDownstream acknowledges every batch at once, a round in one
// PublishBatch call, as the Kafka producer takes it.
type nopBatchDownstream struct{ nopDownstream }

func (d *nopBatchDownstream) PublishBatch(_ context.Context, records []queue.Record) error {
	d.n.Add(int64(len(records)))
	return nil
}

// BenchmarkForwardBacklog measures how fast Run drains a backlog: b.N
// batches of 512 bytes over 8 keys, spooled before the timer starts, are
// forwarded to a downstream taking each round in one call; the timer
// stops when the last one is acknowledged.
func BenchmarkForwardBacklog(b *testing.B) {
	down := &nopBatchDownstream{}
	cfg := testOptions(b.TempDir())
	cfg.MaxCoalesce = 1
	s, err := openSpool(cfg, down)
	if err != nil {
		b.Fatal(err)
	}
	defer mustClose(b, s)
	value := make([]byte, 512)
	recs := make([]queue.Record, 0, 256)
	for i := 0; i < b.N; i += len(recs) {
		recs = recs[:0]
		for j := i; j < b.N && len(recs) < cap(recs); j++ {
			recs = append(recs, queue.Record{Key: fmt.Sprintf("svc-%d", j%8), Value: value})
		}
		if err := s.PublishBatch(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	startRun(b, s)
	for down.n.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "batches/s")
}
