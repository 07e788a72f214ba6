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

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama (the dead-letter test's Kafka client) starts go-metrics'
		// process-wide meter ticker, which never stops.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// memStore keeps records by id and fails its first failures writes.
type memStore struct {
	mu       sync.Mutex
	byID     map[model.RecordID]model.LogRecord
	failures int
	writes   int
}

func (s *memStore) Write(_ context.Context, recs []model.LogRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failures > 0 {
		s.failures--
		return errors.New("store unavailable")
	}
	for _, r := range recs {
		s.byID[r.ID] = r
	}
	return nil
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func publish(t *testing.T, q *diskqueue.Queue, from, n int) {
	t.Helper()
	var recs []model.LogRecord
	for i := from; i < from+n; i++ {
		recs = append(recs, model.LogRecord{ID: model.RecordID{byte(i), byte(i >> 8)}, Timestamp: int64(i) + 1, Service: "svc",
			Message: `{"level":"error","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`})
	}
	b, err := otlplogs.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(context.Background(), "svc", b); err != nil {
		t.Fatal(err)
	}
}

// runFor runs in until until() holds (at most 10 s), then stops it and
// waits for it to drain.
// openQueue opens an empty disk queue, closed when the test ends.
func openQueue(t *testing.T) *diskqueue.Queue {
	t.Helper()
	opts := diskqueue.DefaultOptions()
	opts.Dir = t.TempDir()
	q, err := diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func runFor(t *testing.T, in interface{ Run(context.Context) error }, until func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !until() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestCommitsOnlyAfterStoreAccepted(t *testing.T) {
	dir := t.TempDir()
	opts := diskqueue.DefaultOptions()
	opts.Dir = dir
	q, err := diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, q, 0, 100)
	publish(t, q, 100, 100)

	store := &memStore{byID: map[model.RecordID]model.LogRecord{}, failures: 3}
	o := DefaultOptions()
	o.MaxBatchWait = 10 * time.Millisecond
	o.ServiceGrades = map[string]int{"svc": 2}
	runFor(t, New(o, q, store, nil), func() bool { return store.len() == 200 })
	if store.len() != 200 || store.writes < 4 {
		t.Fatalf("got %d records after %d writes; want 200 after the 3 failures were retried", store.len(), store.writes)
	}
	for _, r := range store.byID {
		if r.Level != "error" || r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || r.Grade != 2 {
			t.Fatalf("record not enriched: %+v", r)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything was committed: a new ingester on the reopened queue gets
	// only what is published next.
	q, err = diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	publish(t, q, 200, 10)
	store2 := &memStore{byID: map[model.RecordID]model.LogRecord{}}
	runFor(t, New(o, q, store2, nil), func() bool { return store2.len() == 10 })
	time.Sleep(50 * time.Millisecond)
	if store2.len() != 10 {
		t.Errorf("after reopen: got %d records; want only the 10 new ones", store2.len())
	}
}

func TestUndecodableBatchIsDeadLettered(t *testing.T) {
	dir := t.TempDir()
	opts := diskqueue.DefaultOptions()
	opts.Dir = filepath.Join(dir, "queue")
	q, err := diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	publish(t, q, 0, 5)
	if err := q.Publish(auth.WithTenant(context.Background(), "team-a"), "svc", []byte{0xff, 0xff, 0xff, 0x01}); err != nil {
		t.Fatal(err)
	}
	publish(t, q, 5, 5)
	dlq, err := NewFileDeadLetter(filepath.Join(dir, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	store := &memStore{byID: map[model.RecordID]model.LogRecord{}}
	o := DefaultOptions()
	o.MaxBatchWait = 10 * time.Millisecond
	runFor(t, New(o, q, store, dlq), func() bool { return store.len() == 10 })
	if store.len() != 10 {
		t.Errorf("got %d records; want the 10 good ones", store.len())
	}
	b, err := os.ReadFile(filepath.Join(dir, "dlq", "deadletter.jsonl"))
	if err != nil || !strings.Contains(string(b), "cannot decode OTLP logs protobuf") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("dead-letter file: got %q, %v; want one entry with the reason", b, err)
	}
	if !strings.Contains(string(b), `"tenant":"team-a"`) {
		t.Errorf("dead-letter file: got %q; want the batch's tenant", b)
	}
}

func TestStoreOutageLongerThanDrainGrace(t *testing.T) {
	q := openQueue(t)
	publish(t, q, 0, 10)
	// The store fails for longer than the drain grace of a stopping
	// ingester would allow (4 retries take 1.5 s); a running ingester keeps
	// retrying.
	store := &memStore{byID: map[model.RecordID]model.LogRecord{}, failures: 4}
	o := DefaultOptions()
	o.MaxBatchWait = 10 * time.Millisecond
	o.DrainTimeout = 200 * time.Millisecond
	in := New(o, q, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for store.len() < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || store.len() != 10 {
		t.Fatalf("got %d records, Run error %v; want all 10 after the outage", store.len(), err)
	}
}

func TestDrainContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dctx, stop := drainContext(ctx, 50*time.Millisecond)
	defer stop()
	time.Sleep(100 * time.Millisecond)
	if dctx.Err() != nil {
		t.Fatal("drain context ended while its parent runs")
	}
	cancel()
	if dctx.Err() != nil {
		t.Fatal("drain context ended without its grace")
	}
	select {
	case <-dctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("drain context outlived its grace")
	}
}

// failingCommits wraps a consumer whose commits fail for a while, as Kafka's
// do while its coordinator is away.
type failingCommits struct {
	*diskqueue.Queue
	mu    sync.Mutex
	fails int
}

func (f *failingCommits) Commit(ctx context.Context, m queue.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("coordinator not available")
	}
	return f.Queue.Commit(ctx, m)
}

func TestCommitFailureDoesNotStopTheIngester(t *testing.T) {
	q := openQueue(t)
	c := &failingCommits{Queue: q, fails: 2}
	store := &memStore{byID: map[model.RecordID]model.LogRecord{}}
	o := DefaultOptions()
	o.MaxBatchWait = 5 * time.Millisecond
	in := New(o, c, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	for i := 0; i < 5; i++ {
		publish(t, q, i*10, 10)
		time.Sleep(30 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for store.len() < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || store.len() != 50 {
		t.Fatalf("got %d records, Run error %v; want all 50 and no error", store.len(), err)
	}
}

// failingDeadLetter refuses everything, as an unreachable dead-letter
// topic does.
type failingDeadLetter struct{}

func (failingDeadLetter) DeadLetter(context.Context, string, []byte, string) error {
	return errors.New("dead-letter topic unavailable")
}

// TestUndecodableBatchIsKeptWhenDeadLetteringFails: the good batches before
// it are stored and committed, the ingester stops with the error, and the
// undecodable batch is delivered again after a restart, not skipped.
func TestUndecodableBatchIsKeptWhenDeadLetteringFails(t *testing.T) {
	opts := diskqueue.DefaultOptions()
	opts.Dir = t.TempDir()
	q, err := diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, q, 0, 5)
	bad := []byte{0xff, 0xff, 0xff, 0x01}
	if err := q.Publish(context.Background(), "svc", bad); err != nil {
		t.Fatal(err)
	}
	store := &memStore{byID: map[model.RecordID]model.LogRecord{}}
	o := DefaultOptions()
	o.MaxBatchWait = 50 * time.Millisecond
	err = New(o, q, store, failingDeadLetter{}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "dead-letter topic unavailable") {
		t.Fatalf("Run: got %v; want the dead-letter error", err)
	}
	if store.len() != 5 {
		t.Errorf("stored %d records; want the 5 before the undecodable batch", store.len())
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, err = diskqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m, err := q.Fetch(ctx)
	if err != nil || string(m.Value) != string(bad) {
		t.Errorf("after a restart: got %q, %v; want the undecodable batch again", m.Value, err)
	}
}
