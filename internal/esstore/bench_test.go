package esstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

const benchDocs = 100_000

// benchRecords makes n records of about 200 bytes (message and labels).
func benchRecords(n int, seed uint64) []model.LogRecord {
	rng := rand.New(rand.NewPCG(seed, 7))
	now := time.Now().UnixNano()
	recs := make([]model.LogRecord, n)
	for i := range recs {
		r := &recs[i]
		for j := range r.ID {
			r.ID[j] = byte(rng.Uint32())
		}
		r.Timestamp = now + int64(i)*int64(time.Millisecond)
		r.ObservedTimestamp = r.Timestamp
		r.Service, r.Level, r.Env, r.Host, r.Grade, r.Source = services[i%4], levels[i%3], "prod", hosts[i%4], 1+i%4, "http"
		r.Message = fmt.Sprintf("GET /api/v1/users/%d/orders?page=%d took %d ms status=%d bytes=%d user_agent=%s",
			rng.IntN(1e6), rng.IntN(100), rng.IntN(500), 200+100*rng.IntN(4), rng.IntN(1e5), strings.Repeat("x", 20))
	}
	return recs
}

// BenchmarkEncode measures serialising records into bulk actions, the
// part of Write that runs in Vigil rather than in Elasticsearch.
func BenchmarkEncode(b *testing.B) {
	s := &Store{opts: Options{IndexPrefix: "vigil-logs-"}}
	recs := benchRecords(1000, 1)
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(s.encode(recs, nil).buf)))
	for b.Loop() {
		buf = s.encode(recs, buf).buf
	}
}

// BenchmarkESWrite measures Write: encoding, bulk requests, response
// parsing, retries. Run with -benchtime=1x (each iteration is 100k docs).
func BenchmarkESWrite(b *testing.B) {
	s := openES(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		recs := benchRecords(benchDocs, uint64(i))
		start := time.Now()
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(benchDocs*b.N)/elapsed.Seconds(), "docs/s")
}

// BenchmarkESRawBulk is the ceiling: the same documents, serialised
// beforehand into bulk bodies of the same size, posted with the same
// concurrency, reading only the errors flag of the response.
func BenchmarkESRawBulk(b *testing.B) {
	s := openES(b, nil)
	url := s.opts.URLs[0] + "/_bulk?filter_path=errors"
	client := &http.Client{}
	defer client.CloseIdleConnections()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		e := s.encode(benchRecords(benchDocs, uint64(i)), nil)
		var bodies [][]byte
		for j := 0; j < benchDocs; j += s.opts.BulkMaxDocs {
			bodies = append(bodies, e.buf[e.off[j]:e.off[min(j+s.opts.BulkMaxDocs, benchDocs)]])
		}
		start := time.Now()
		var g errgroup.Group
		g.SetLimit(s.opts.BulkConcurrency)
		var mu sync.Mutex
		for _, body := range bodies {
			g.Go(func() error {
				resp, err := client.Post(url, "application/x-ndjson", bytes.NewReader(body))
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				out, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"errors":false`)) {
					mu.Lock()
					defer mu.Unlock()
					return fmt.Errorf("bulk: %d %.200s", resp.StatusCode, out)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(benchDocs*b.N)/elapsed.Seconds(), "docs/s")
}

// BenchmarkSelectScan reads back 200,000 documents (two benchDocs
// batches) through Select, sorted by time as a log query reads them and in
// any order as a count over time does.
func BenchmarkSelectScan(b *testing.B) {
	s := openES(b, nil)
	ctx := context.Background()
	recs := append(benchRecords(benchDocs, 1), benchRecords(benchDocs, 2)...)
	if err := s.Write(ctx, recs); err != nil {
		b.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	first, last := recs[0].Timestamp, recs[0].Timestamp
	for _, r := range recs {
		first, last = min(first, r.Timestamp), max(last, r.Timestamp)
	}
	for _, anyOrder := range []bool{false, true} {
		name := "sorted"
		if anyOrder {
			name = "any-order"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				n := 0
				p := storage.SelectParams{Start: first, End: last + 1, AnyOrder: anyOrder}
				if err := s.Select(ctx, p, func(*storage.Row) bool { n++; return true }); err != nil || n != len(recs) {
					b.Fatalf("%d rows, %v", n, err)
				}
			}
			b.ReportMetric(float64(len(recs)), "docs")
		})
	}
}
