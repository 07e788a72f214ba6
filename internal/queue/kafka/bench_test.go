package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// Benchmarks need the Kafka in VIGIL_TEST_KAFKA. Batches are 1 MiB of
// log-like JSON lines (compressible like real batches); MB/s counts
// uncompressed batch bytes. For example:
//
//	VIGIL_TEST_KAFKA=127.0.0.1:9092 go test -run '^$' -bench . -benchtime 64x ./internal/queue/kafka/

const benchBatch = 1 << 20

func benchValues() [][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	vals := make([][]byte, 8)
	for i := range vals {
		vals[i] = logLines(r, benchBatch)
	}
	return vals
}

func BenchmarkPublish(b *testing.B) {
	vals := benchValues()
	for _, callers := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch=1MiB/callers=%d", callers), func(b *testing.B) {
			opts := testOptions(b)
			p := mustProducer(b, opts)
			// Connect and create the topic outside the measurement.
			if err := p.Publish(context.Background(), "warmup", []byte("x")); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchBatch)
			b.ReportAllocs()
			b.ResetTimer()
			publishN(b, p, vals, b.N, callers)
		})
	}
}

// publishN publishes n batches from callers concurrent goroutines.
func publishN(b *testing.B, p *Producer, vals [][]byte, n, callers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				key := fmt.Sprintf("svc-%d", (int(i)+w)%16)
				if err := p.Publish(context.Background(), key, vals[i%int64(len(vals))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkConsume measures Fetch of 1 MiB batches with a Commit every 8,
// like an ingester; the batches are published before the measurement.
func BenchmarkConsume(b *testing.B) {
	vals := benchValues()
	opts := testOptions(b)
	p := mustProducer(b, opts)
	publishN(b, p, vals, b.N+1, 8)
	c := mustConsumer(b, opts)
	mustFetch(b, c) // join the group outside the measurement
	b.SetBytes(benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := mustFetch(b, c)
		if i%8 == 7 || i == b.N-1 {
			if err := c.Commit(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
	}
}
