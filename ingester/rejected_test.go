package ingester

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/storage"
)

// refusingStore stores records like memStore but refuses those whose
// message is "refused", as Elasticsearch refuses a document that does not
// fit its mapping: the rest of the batch is stored, and Write reports the
// refused ones in a *storage.RejectedError.
type refusingStore struct{ memStore }

func (s *refusingStore) Write(ctx context.Context, recs []model.LogRecord) error {
	keep, rej := refuse(recs, func(r model.LogRecord) string {
		if r.Message == "refused" {
			return "document_parsing_exception: record " + r.ID.String()
		}
		return ""
	})
	if err := s.memStore.Write(ctx, keep); err != nil {
		return err
	}
	return rej
}

// refuse returns the items of batch that reason has nothing against (""),
// and a *storage.RejectedError with the others and their reasons, or nil.
func refuse[T any](batch []T, reason func(T) string) ([]T, error) {
	var keep []T
	var rej []storage.Rejection
	for i, it := range batch {
		if r := reason(it); r != "" {
			rej = append(rej, storage.Rejection{Index: i, Reason: r})
			continue
		}
		keep = append(keep, it)
	}
	if rej == nil {
		return keep, nil
	}
	return keep, &storage.RejectedError{Items: rej}
}

// flakyDeadLetter fails its first failures calls, then appends to a file.
type flakyDeadLetter struct {
	*FileDeadLetter
	mu       sync.Mutex
	failures int
}

func (d *flakyDeadLetter) DeadLetter(ctx context.Context, key string, value []byte, reason string) error {
	d.mu.Lock()
	fail := d.failures > 0
	if fail {
		d.failures--
	}
	d.mu.Unlock()
	if fail {
		return errors.New("dead-letter destination unavailable")
	}
	return d.FileDeadLetter.DeadLetter(ctx, key, value, reason)
}

// deadLetters reads a dead-letter file.
func deadLetters(t *testing.T, path string) []struct {
	Key, Reason string
	Value       []byte
} {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []struct {
		Key, Reason string
		Value       []byte
	}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var e struct {
			Key, Reason string
			Value       []byte
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("dead-letter file: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// queueWith returns a disk queue holding one message, b. The caller
// closes it (checkCommitted does).
func queueWith(t testing.TB, b []byte) (*diskqueue.Queue, diskqueue.Options) {
	t.Helper()
	opts := diskqueue.DefaultOptions()
	opts.Dir = t.TempDir()
	q, err := diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(context.Background(), "test", b); err != nil {
		q.Close()
		t.Fatal(err)
	}
	return q, opts
}

// reopen closes q and opens it again, as after a restart.
func reopen(t *testing.T, q *diskqueue.Queue, opts diskqueue.Options) *diskqueue.Queue {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, err := diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// checkCommitted closes q and fails unless the reopened queue has nothing
// to deliver: every message was committed.
func checkCommitted(t *testing.T, q *diskqueue.Queue, opts diskqueue.Options) {
	t.Helper()
	q = reopen(t, q, opts)
	defer q.Close()
	if m, ok, err := q.TryFetch(); ok || err != nil {
		t.Errorf("after a restart, the queue delivers the message at %d again (%v); want it committed", m.Position, err)
	}
}

// ingestOne publishes the batch b alone to a disk queue, runs the ingester
// start builds over it until done holds, and checks that the batch was
// committed.
func ingestOne[I interface{ Run(context.Context) error }](t *testing.T, b []byte, start func(queue.Consumer) I, done func(I) bool) I {
	t.Helper()
	q, opts := queueWith(t, b)
	in := start(q)
	runFor(t, in, func() bool { return done(in) })
	checkCommitted(t, q, opts)
	return in
}

// TestRejectedRecordsAreDeadLettered: records the store refuses (a
// *storage.RejectedError from Write) are dead-lettered one by one with the
// store's reason, the rest of the batch is stored, and the batch is
// committed. While the dead-letter destination fails, the batch is written
// again and not committed.
func TestRejectedRecordsAreDeadLettered(t *testing.T) {
	dir := t.TempDir()
	var recs []model.LogRecord
	for i := range 10 {
		recs = append(recs, model.LogRecord{ID: model.RecordID{byte(i + 1)}, Timestamp: int64(i + 1), Service: "pay", Message: "ok"})
	}
	recs[3].Message, recs[7].Message = "refused", "refused"
	b, err := otlplogs.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := NewFileDeadLetter(filepath.Join(dir, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	dlq := &flakyDeadLetter{FileDeadLetter: fd, failures: 1}
	store := &refusingStore{memStore{byID: map[model.RecordID]model.LogRecord{}}}
	in := ingestOne(t, b, func(q queue.Consumer) *Ingester { return New(testOptions(), q, store, dlq) },
		func(in *Ingester) bool { return testutil.ToFloat64(in.m.batches) == 1 })

	if store.len() != 8 {
		t.Errorf("stored %d records; want the 8 not refused", store.len())
	}
	if store.writes != 2 {
		t.Errorf("%d store writes; want 2: the first, and again after the dead-letter destination failed", store.writes)
	}
	got := deadLetters(t, filepath.Join(dir, "dlq", "deadletter.jsonl"))
	if len(got) != 2 {
		t.Fatalf("dead-lettered %d entries; want the 2 refused records", len(got))
	}
	for k, i := range []int{3, 7} {
		dl, err := otlplogs.Unmarshal(nil, got[k].Value)
		if err != nil || len(dl) != 1 || dl[0].ID != recs[i].ID || got[k].Key != "pay" ||
			got[k].Reason != "document_parsing_exception: record "+recs[i].ID.String() {
			t.Errorf("dead letter %d: key %q, reason %q, records %+v (%v); want record %d alone with the store's reason", k, got[k].Key, got[k].Reason, dl, err, i)
		}
	}
	if n := testutil.ToFloat64(in.m.deadLettered.WithLabelValues("rejected")); n != 3 {
		t.Errorf("dead_lettered_total{reason=rejected} = %v; want 3 (one failed attempt, then the 2 records)", n)
	}
	if n := testutil.ToFloat64(in.m.written); n != 10 {
		t.Errorf("indexed_records_total = %v; want the whole batch, 10", n)
	}
	if n := testutil.ToFloat64(in.m.writeErrors); n != 1 {
		t.Errorf("store_write_errors_total = %v; want 1, the attempt whose dead-lettering failed", n)
	}
}

// TestRejectedRecordsWithoutDeadLetter: with nowhere to put them, refused
// records are not skipped: the batch is not committed.
func TestRejectedRecordsWithoutDeadLetter(t *testing.T) {
	b, err := otlplogs.Marshal([]model.LogRecord{{ID: model.RecordID{1}, Timestamp: 1, Service: "pay", Message: "refused"}})
	if err != nil {
		t.Fatal(err)
	}
	q, qo := queueWith(t, b)
	store := &refusingStore{memStore{byID: map[model.RecordID]model.LogRecord{}}}
	o := testOptions()
	o.DrainTimeout = 10 * time.Millisecond
	in := New(o, q, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(in.m.writeErrors) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("Run: got nil; want the refused record as an error after the drain")
	}
	if n := testutil.ToFloat64(in.m.batches); n != 0 {
		t.Errorf("committed %v batches; want none", n)
	}
	q = reopen(t, q, qo)
	defer q.Close()
	if _, ok, err := q.TryFetch(); !ok || err != nil {
		t.Errorf("after a restart: got nothing (%v); want the batch delivered again", err)
	}
}

// refusingSpans stores spans like memSpans but refuses those named
// "refused".
type refusingSpans struct{ memSpans }

func (s *refusingSpans) Write(ctx context.Context, spans []model.Span) error {
	keep, rej := refuse(spans, func(sp model.Span) string {
		if sp.Name == "refused" {
			return "status 400: too many nested objects"
		}
		return ""
	})
	if err := s.memSpans.Write(ctx, keep); err != nil {
		return err
	}
	return rej
}

// TestRejectedSpansAreDeadLettered is the same for spans: the refused span
// is dead-lettered under its trace id, the others are stored, their calls
// counted, and the batch committed.
func TestRejectedSpansAreDeadLettered(t *testing.T) {
	dir := t.TempDir()
	tr := model.TraceID{15: 7}
	spans := []model.Span{
		{TraceID: tr, SpanID: model.SpanID{7: 1}, Name: "GET", Service: "web", StartTime: 1, Duration: 10},
		{TraceID: tr, SpanID: model.SpanID{7: 2}, ParentSpanID: model.SpanID{7: 1}, Name: "refused", Service: "db", StartTime: 2, Duration: 5},
		{TraceID: tr, SpanID: model.SpanID{7: 3}, ParentSpanID: model.SpanID{7: 1}, Name: "SELECT", Service: "db", StartTime: 3, Duration: 5},
	}
	b, err := otlptraces.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := NewFileDeadLetter(filepath.Join(dir, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	store := &refusingSpans{memSpans{spans: map[[24]byte]model.Span{}}}
	in := ingestOne(t, b, func(q queue.Consumer) *SpanIngester { return NewSpanIngester(testOptions(), q, store, dlq) },
		func(in *SpanIngester) bool { return testutil.ToFloat64(in.written) == 3 })
	if store.len() != 2 {
		t.Errorf("stored %d spans; want the 2 not refused", store.len())
	}
	got := deadLetters(t, filepath.Join(dir, "dlq", "deadletter.jsonl"))
	if len(got) != 1 {
		t.Fatalf("dead-lettered %d entries; want the refused span", len(got))
	}
	dl, err := otlptraces.Unmarshal(nil, got[0].Value)
	if err != nil || len(dl) != 1 || dl[0].SpanID != spans[1].SpanID || got[0].Key != tr.String() || got[0].Reason != "status 400: too many nested objects" {
		t.Errorf("dead letter: key %q, reason %q, %d spans (%v); want span 2 alone under its trace id with the store's reason", got[0].Key, got[0].Reason, len(dl), err)
	}
	if n := testutil.ToFloat64(in.rejected); n != 1 {
		t.Errorf("dead_lettered_spans_total = %v; want 1", n)
	}
	if n := edgeCalls(t, in.SpanMetrics(), "web", "db"); n != 2 {
		t.Errorf("calls web → db: %v; want 2, every span of the batch", n)
	}
}

// testOptions returns DefaultOptions with a short batch wait.
func testOptions() Options {
	o := DefaultOptions()
	o.MaxBatchWait = 10 * time.Millisecond
	return o
}
