package ingester

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// memSpans keeps spans by trace and span id and fails its first failures
// writes.
type memSpans struct {
	mu       sync.Mutex
	spans    map[[24]byte]model.Span
	failures int
}

func (s *memSpans) Write(_ context.Context, spans []model.Span) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return errors.New("store unavailable")
	}
	for _, sp := range spans {
		var k [24]byte
		copy(k[:16], sp.TraceID[:])
		copy(k[16:], sp.SpanID[:])
		s.spans[k] = sp
	}
	return nil
}

func (s *memSpans) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.spans)
}

// TestSpanIngester runs the span pipeline over a disk queue: spans are
// written after the store recovers from failures, an undecodable batch is
// dead-lettered, the calls between services are counted, and everything is
// committed.
func TestSpanIngester(t *testing.T) {
	dir := t.TempDir()
	opts := diskqueue.DefaultOptions()
	opts.Dir = filepath.Join(dir, "queue")
	q, err := diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		root := model.Span{TraceID: model.TraceID{15: byte(i + 1)}, SpanID: model.SpanID{7: 1}, Name: "GET", Service: "web", StartTime: 1, Duration: 10}
		child := model.Span{TraceID: root.TraceID, SpanID: model.SpanID{7: 2}, ParentSpanID: root.SpanID, Name: "SELECT", Service: "db", StartTime: 2, Duration: 5}
		b, err := otlptraces.Marshal([]model.Span{root, child})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Publish(context.Background(), "spans", b); err != nil {
			t.Fatal(err)
		}
		if i == 25 {
			if err := q.Publish(context.Background(), "spans", []byte{0xff, 0xff, 0xff, 0x01}); err != nil {
				t.Fatal(err)
			}
		}
	}
	dlq, err := NewFileDeadLetter(filepath.Join(dir, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	store := &memSpans{spans: map[[24]byte]model.Span{}, failures: 2}
	o := DefaultOptions()
	o.MaxBatchWait = 10 * time.Millisecond
	o.MaxBatchRecords = 16
	in := NewSpanIngester(o, q, store, dlq)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); store.len() < 100 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if store.len() != 100 {
		t.Errorf("stored %d spans; want 100", store.len())
	}
	if got := edgeCalls(t, in.SpanMetrics(), "web", "db"); got != 50 {
		t.Errorf("calls web → db: %v; want 50", got)
	}
	// The root spans are web's requests; db's spans, of no kind and with a
	// parent, are not requests.
	if got := counterValue(t, in.SpanMetrics(), spanmetrics.CallsMetric, "service_name=web", "span_kind=SPAN_KIND_UNSPECIFIED",
		"span_name=GET", "status_code=STATUS_CODE_UNSET"); got != 50 {
		t.Errorf("requests of web: %v; want 50", got)
	}
	if got := testutil.ToFloat64(in.dead); got != 1 {
		t.Errorf("dead-lettered batches: %v; want 1", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dlq", "deadletter.jsonl")); err != nil || strings.Count(string(b), "\n") != 1 {
		t.Errorf("dead-letter file: %q, %v; want one entry", b, err)
	}
	checkCommitted(t, q, opts)
}
