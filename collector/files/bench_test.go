package files

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// BenchmarkTail tails a pre-written file of 200-byte lines into a sink that
// only counts. One op is one line.
//
//	go test -run '^$' -bench BenchmarkTail -benchtime 2000000x ./collector/files/
func BenchmarkTail(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "app.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("x", 200-len(seqLine(0))-1-len(" 2024-01-31T12:00:00Z INFO"))
	for i := range b.N {
		fmt.Fprintf(w, "2024-01-31T12:00:00Z INFO %s%s\n", seqLine(i%10000000), pad)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}

	opts := testOptions(b, path)
	opts.PollInterval = 5 * time.Millisecond
	var n atomic.Int64
	done := make(chan struct{})
	sink := func(_ context.Context, recs []model.LogRecord) error {
		if n.Add(int64(len(recs))) == int64(b.N) {
			close(done)
		}
		return nil
	}
	tl, err := New(opts, sink)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- tl.Run(ctx) }()
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(b.N)*200/elapsed.Seconds()/1e6, "MB/s")
}
