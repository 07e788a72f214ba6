package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
)

// recorder is a batch producer that keeps what it was given, fails the
// keys listed in fail, and refuses records over max bytes (when set) as
// Kafka does.
type recorder struct {
	mu      sync.Mutex
	got     map[string][]model.Span
	keys    []string // in publish order
	batches int      // PublishBatch calls
	fail    map[string]error
	max     int
}

func (r *recorder) Publish(ctx context.Context, key string, value []byte) error {
	return r.PublishBatch(ctx, []queue.Record{{Key: key, Value: value}})
}

func (r *recorder) PublishBatch(_ context.Context, records []queue.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range records {
		if err := r.fail[rec.Key]; err != nil {
			return err
		}
		if r.max > 0 && len(rec.Key)+len(rec.Value) > r.max {
			return fmt.Errorf("%w: %d bytes", queue.ErrTooLarge, len(rec.Key)+len(rec.Value))
		}
	}
	if r.got == nil {
		r.got = map[string][]model.Span{}
	}
	r.batches++
	for _, rec := range records {
		spans, err := otlptraces.Unmarshal(nil, rec.Value)
		if err != nil {
			return err
		}
		r.got[rec.Key] = append(r.got[rec.Key], spans...)
		r.keys = append(r.keys, rec.Key)
	}
	return nil
}

func (r *recorder) MaxMessageBytes() int { return r.max }

func (r *recorder) spans() int {
	n := 0
	for _, s := range r.got {
		n += len(s)
	}
	return n
}

func testSpan(trace byte, span byte, service string) model.Span {
	s := model.Span{Service: service, Name: "op", StartTime: 1_700_000_000_000_000_000, Duration: 1_000_000}
	s.TraceID[15], s.SpanID[7] = trace, span
	return s
}

func newTestTraces(t *testing.T, p queue.Producer) *Traces {
	t.Helper()
	sampler, err := NewSampler(1, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewTraces(p, sampler, 1<<20, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

// TestTracesKeyEachTraceByItsID: the spans of a request reach the queue as
// one batch per trace keyed by its trace id, all in one PublishBatch, from
// each receiver path (OTLP as received, and encoded from spans).
func TestTracesKeyEachTraceByItsID(t *testing.T) {
	spans := []model.Span{testSpan(1, 1, "a"), testSpan(2, 1, "b"), testSpan(1, 2, "c"), testSpan(3, 1, "a"), testSpan(2, 2, "a")}
	data, err := otlptraces.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{data, nil} {
		var r recorder
		if code, msg, _ := newTestTraces(t, &r).publish(context.Background(), "test", nil, spans, raw); code != http.StatusOK {
			t.Fatalf("publish: %d %s", code, msg)
		}
		if r.batches != 1 {
			t.Errorf("PublishBatch calls: got %d; want 1 for the request", r.batches)
		}
		want := map[string][]byte{ // trace id → span ids (OTLP groups spans by resource, so in any order)
			spans[0].TraceID.String(): {1, 2},
			spans[1].TraceID.String(): {1, 2},
			spans[3].TraceID.String(): {1},
		}
		if len(r.keys) != len(want) {
			t.Fatalf("published batches %v; want one per trace", r.keys)
		}
		for key, ids := range want {
			got := r.got[key]
			if len(got) != len(ids) {
				t.Fatalf("trace %s: got %d spans; want %d", key, len(got), len(ids))
			}
			seen := map[byte]bool{}
			for _, s := range got {
				if s.TraceID.String() != key {
					t.Errorf("batch keyed %s holds a span of trace %s", key, s.TraceID)
				}
				seen[s.SpanID[7]] = true
			}
			for _, id := range ids {
				if !seen[id] {
					t.Errorf("trace %s: span %d missing from its batch", key, id)
				}
			}
		}
	}
}

func TestTracesReportFailures(t *testing.T) {
	spans := []model.Span{testSpan(1, 1, "a"), testSpan(2, 1, "b")}
	boom := errors.New("broker down")
	r := recorder{fail: map[string]error{spans[1].TraceID.String(): boom}}
	if code, msg, reason := newTestTraces(t, &r).publish(context.Background(), "test", nil, spans, nil); code != http.StatusServiceUnavailable || reason != "unavailable" {
		t.Errorf("publish with one trace refused: got %d %s (%s); want 503", code, msg, reason)
	}
	r = recorder{fail: map[string]error{spans[0].TraceID.String(): fmt.Errorf("spool: %w", queue.ErrFull)}}
	if code, _, reason := newTestTraces(t, &r).publish(context.Background(), "test", nil, spans, nil); code != http.StatusTooManyRequests || reason != "queue_full" {
		t.Errorf("publish into a full queue: got %d (%s); want 429", code, reason)
	}
}

// TestTracesSplitATraceTooLargeForTheQueue: a trace larger than the
// producer accepts (its MaxMessageBytes) is published in parts under its
// trace id, in one PublishBatch, so it does not block what follows; a
// span that alone is larger is refused as too large.
func TestTracesSplitATraceTooLargeForTheQueue(t *testing.T) {
	var spans []model.Span
	for i := 1; i <= 40; i++ {
		spans = append(spans, testSpan(9, byte(i), "big"))
	}
	data, _ := otlptraces.Marshal(spans)
	r := &recorder{max: len(data) / 3}
	if code, msg, _ := newTestTraces(t, r).publish(context.Background(), "test", nil, spans, data); code != http.StatusOK {
		t.Fatalf("publish: %d %s", code, msg)
	}
	key := spans[0].TraceID.String()
	if got := len(r.got[key]); got != 40 || len(r.keys) < 3 || r.batches != 1 {
		t.Errorf("published %d spans of the trace under its key in %d batches, %d PublishBatch calls; want all 40, in 3 or more, in 1", got, len(r.keys), r.batches)
	}
	for i, s := range r.got[key] {
		if s.SpanID[7] != byte(i+1) {
			t.Fatalf("span %d is %s; the parts are out of order", i, s.SpanID)
		}
	}

	huge := testSpan(7, 1, "big")
	huge.Name = string(make([]byte, 4096))
	r = &recorder{max: 1024}
	if code, _, reason := newTestTraces(t, r).publish(context.Background(), "test", nil, []model.Span{huge, testSpan(8, 1, "small")}, nil); code != http.StatusRequestEntityTooLarge || reason != "too_large" {
		t.Errorf("publish of a span larger than the queue accepts: got %d (%s); want 413", code, reason)
	}
	if r.spans() != 0 {
		t.Errorf("%d spans published from a refused request; want none", r.spans())
	}
}
