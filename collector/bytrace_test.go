package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
)

// recorder is a producer that keeps what it was given and fails the keys
// listed in fail.
type recorder struct {
	mu   sync.Mutex
	got  map[string][]model.Span
	raw  map[string][]byte
	fail map[string]error
}

func (r *recorder) Publish(_ context.Context, key string, value []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail[key]; err != nil {
		return err
	}
	if r.got == nil {
		r.got, r.raw = map[string][]model.Span{}, map[string][]byte{}
	}
	spans, err := otlptraces.Unmarshal(nil, value)
	if err != nil {
		r.raw[key] = value
		return nil
	}
	r.got[key] = append(r.got[key], spans...)
	return nil
}

func testSpan(trace byte, span byte, service string) model.Span {
	s := model.Span{Service: service, Name: "op", StartTime: 1_700_000_000_000_000_000, Duration: 1_000_000}
	s.TraceID[15], s.SpanID[7] = trace, span
	return s
}

func TestByTraceKeysEachTraceByItsID(t *testing.T) {
	spans := []model.Span{testSpan(1, 1, "a"), testSpan(2, 1, "b"), testSpan(1, 2, "c"), testSpan(3, 1, "a"), testSpan(2, 2, "a")}
	data, err := otlptraces.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	if err := (ByTrace{Down: &r}).Publish(context.Background(), SpanBatchKey, data); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{ // trace id → span ids (OTLP groups spans by resource, so in any order)
		spans[0].TraceID.String(): {1, 2},
		spans[1].TraceID.String(): {1, 2},
		spans[3].TraceID.String(): {1},
	}
	if len(r.got) != len(want) {
		t.Fatalf("published keys %d; want %d (one per trace)", len(r.got), len(want))
	}
	for key, ids := range want {
		got := r.got[key]
		if len(got) != len(ids) {
			t.Fatalf("trace %s: got %d spans; want %d", key, len(got), len(ids))
		}
		seen := map[byte]bool{}
		for _, s := range got {
			if s.TraceID.String() != key {
				t.Errorf("message keyed %s holds a span of trace %s", key, s.TraceID)
			}
			seen[s.SpanID[7]] = true
		}
		for _, id := range ids {
			if !seen[id] {
				t.Errorf("trace %s: span %d missing from its message", key, id)
			}
		}
	}
}

func TestByTraceReportsFailures(t *testing.T) {
	spans := []model.Span{testSpan(1, 1, "a"), testSpan(2, 1, "b")}
	data, _ := otlptraces.Marshal(spans)
	boom := errors.New("broker down")
	r := recorder{fail: map[string]error{spans[1].TraceID.String(): boom}}
	if err := (ByTrace{Down: &r}).Publish(context.Background(), SpanBatchKey, data); !errors.Is(err, boom) {
		t.Errorf("Publish with one trace refused: got %v; want %v", err, boom)
	}
}

func TestByTracePassesUndecodableBatches(t *testing.T) {
	var r recorder
	if err := (ByTrace{Down: &r}).Publish(context.Background(), SpanBatchKey, []byte("\xff\xff")); err != nil {
		t.Fatal(err)
	}
	if string(r.raw[SpanBatchKey]) != "\xff\xff" {
		t.Errorf("an undecodable batch was not published as it is under its key: %q", r.raw)
	}
}

// sizeLimited refuses messages over max bytes as Kafka does.
type sizeLimited struct {
	recorder
	max int
}

func (s *sizeLimited) Publish(ctx context.Context, key string, value []byte) error {
	if len(value) > s.max {
		return fmt.Errorf("%w: %d bytes", queue.ErrTooLarge, len(value))
	}
	return s.recorder.Publish(ctx, key, value)
}

func TestByTraceSplitsATraceTooLargeForKafka(t *testing.T) {
	var spans []model.Span
	for i := 1; i <= 40; i++ {
		spans = append(spans, testSpan(9, byte(i), "big"))
	}
	data, _ := otlptraces.Marshal(spans)
	down := &sizeLimited{max: len(data) / 3}
	if err := (ByTrace{Down: down}).Publish(context.Background(), SpanBatchKey, data); err != nil {
		t.Fatal(err)
	}
	if got := len(down.got[spans[0].TraceID.String()]); got != 40 {
		t.Errorf("published %d spans of the trace under its key; want all 40", got)
	}
}
