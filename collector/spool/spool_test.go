package spool

import (
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"

	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

// TestForwardInOrder: batches of several keys published while Run forwards
// reach the downstream once each, in publish order, and the gauges return
// to zero.
func TestForwardInOrder(t *testing.T) {
	down := &fakeDownstream{}
	s := mustOpen(t, testOptions(t.TempDir()), down)
	defer mustClose(t, s)
	startRun(t, s)

	want := numbered([]string{"api", "checkout", "search", ""}, 300)
	var valueBytes int
	for _, b := range want {
		mustPublish(t, s, b)
		valueBytes += len(b.value)
	}
	waitFor(t, "every batch forwarded", func() bool { return len(down.forwarded()) >= len(want) })
	if got := down.forwarded(); !slices.Equal(got, want) {
		t.Fatalf("forwarded %d batches, first difference at %d; want the %d published, in order", len(got), firstDiff(got, want), len(want))
	}
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	checkBacklog(t, s, 0, 0)
	if got := metricValue(t, s.m.forwardedBatches); got != float64(len(want)) {
		t.Errorf("forwarded batches counter: got %v; want %d", got, len(want))
	}
	if got := metricValue(t, s.m.forwardedBytes); got != float64(valueBytes) {
		t.Errorf("forwarded bytes counter: got %v; want %d", got, valueBytes)
	}
	if got := metricValue(t, s.m.forwardLatency); got != float64(len(want)) {
		t.Errorf("forward latency observations: got %v; want %d", got, len(want))
	}
}

// TestForwardConcurrentPublishers: with one publisher per key, every key's
// batches are forwarded once each, in that key's order.
func TestForwardConcurrentPublishers(t *testing.T) {
	down := &fakeDownstream{}
	s := mustOpen(t, testOptions(t.TempDir(), func(o *testConfig) { o.SegmentBytes = 8 << 10 }), down)
	defer mustClose(t, s)
	startRun(t, s)

	const keys, perKey = 4, 100
	var wg sync.WaitGroup
	for k := range keys {
		key := fmt.Sprintf("svc-%d", k)
		wg.Go(func() {
			for i := range perKey {
				if err := s.Publish(context.Background(), key, fmt.Appendf(nil, "%d", i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "every batch forwarded", func() bool { return len(down.forwarded()) >= keys*perKey })
	byKey := map[string][]string{}
	for _, b := range down.forwarded() {
		byKey[b.key] = append(byKey[b.key], b.value)
	}
	for k := range keys {
		key := fmt.Sprintf("svc-%d", k)
		var want []string
		for i := range perKey {
			want = append(want, fmt.Sprint(i))
		}
		if !slices.Equal(byKey[key], want) {
			t.Errorf("key %s: forwarded %v; want 0..%d once each, in order", key, byKey[key], perKey-1)
		}
	}
}

// TestRetryKeepsOrder: a batch the downstream refuses several times is
// retried until accepted; later batches wait behind it.
func TestRetryKeepsOrder(t *testing.T) {
	want := numbered([]string{"a", "b", "c"}, 30)
	stuck := want[7]
	const failures = 6
	timeout := fmt.Errorf("no acknowledgement within 10s: %w", context.DeadlineExceeded)
	down := &fakeDownstream{fail: func(b batch, call int) error {
		if b.value != stuck.value || call > failures {
			return nil
		}
		if call%2 == 0 {
			return timeout
		}
		return errDown
	}}
	s := mustOpen(t, testOptions(t.TempDir()), down)
	defer mustClose(t, s)
	for _, b := range want {
		mustPublish(t, s, b)
	}
	startRun(t, s)
	waitFor(t, "every batch forwarded", func() bool { return len(down.forwarded()) >= len(want) })
	if got := down.forwarded(); !slices.Equal(got, want) {
		t.Fatalf("forwarded %v…; want the %d published batches in order (first difference at %d)", got[:min(10, len(got))], len(want), firstDiff(got, want))
	}
	if got := down.callsOf(stuck.value); got != failures+1 {
		t.Errorf("attempts at the refused batch: got %d; want %d", got, failures+1)
	}
	for reason, want := range map[string]float64{reasonError: failures / 2, reasonTimeout: failures / 2, reasonCommit: 0} {
		if got := metricValue(t, s.m.forwardErrors.WithLabelValues(reason)); got != want {
			t.Errorf("forward errors with reason %s: got %v; want %v", reason, got, want)
		}
	}
}

// TestOutageBacklog: while the downstream is down, batches pile up in the
// spool, the gauges show them, and the first one is retried without end;
// when it is back, all of them are forwarded in order.
func TestOutageBacklog(t *testing.T) {
	down := &fakeDownstream{fail: alwaysFail}
	s := mustOpen(t, testOptions(t.TempDir()), down)
	defer mustClose(t, s)
	startRun(t, s)
	want := numbered([]string{"a", "b"}, 20)
	for _, b := range want {
		mustPublish(t, s, b)
	}
	waitFor(t, "retries of the first batch", func() bool { return down.callsOf(want[0].value) >= 5 })
	checkBacklog(t, s, int64(len(want)), spooledSize(want...))
	if n := down.callsOf(want[1].value); n != 0 {
		t.Errorf("second batch: %d attempts while the first is refused; want 0", n)
	}
	down.setFail(nil)
	waitFor(t, "every batch forwarded", func() bool { return len(down.forwarded()) >= len(want) })
	if got := down.forwarded(); !slices.Equal(got, want) {
		t.Fatalf("forwarded %v; want %v", got, want)
	}
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	checkBacklog(t, s, 0, 0)
}

// TestFullThenReclaimed: Publish returns queue.ErrFull, without writing, at
// MaxBytes; once the batches are forwarded the space is reusable and their
// segments are deleted.
func TestFullThenReclaimed(t *testing.T) {
	dir := t.TempDir()
	value := strings.Repeat("v", 1000)
	size := spooledSize(batch{"k", value})
	const capacity = 20
	opts := testOptions(dir, func(o *testConfig) {
		o.MaxBytes = capacity*size + size/2
		o.SegmentBytes = 4 * size
	})
	down := &fakeDownstream{fail: alwaysFail}
	s := mustOpen(t, opts, down)
	defer mustClose(t, s)
	startRun(t, s)

	fill := func(round int) {
		t.Helper()
		for i := range capacity {
			mustPublish(t, s, batch{"k", value[:len(value)-4] + fmt.Sprintf("%02d%02d", round, i)})
		}
		err := s.Publish(context.Background(), "k", []byte(value))
		if !errors.Is(err, queue.ErrFull) {
			t.Fatalf("Publish into a full spool: got %v; want queue.ErrFull", err)
		}
		checkBacklog(t, s, capacity, capacity*size)
	}
	fill(0)
	segsFull := segments(t, dir)
	down.setFail(nil)
	waitFor(t, "every batch forwarded", func() bool { return len(down.forwarded()) >= capacity })
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	// The commit that frees the space follows the last acknowledgement.
	waitFor(t, fmt.Sprintf("the %d segment files of a full spool deleted but the last", segsFull),
		func() bool { return segments(t, dir) == 1 })
	down.setFail(alwaysFail)
	fill(1) // the whole bound is usable again
	if got := len(down.forwarded()); got != capacity {
		t.Errorf("forwarded %d batches; want %d: the refused Publish must not be spooled", got, capacity)
	}
}

func segments(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestRestart: a spool closed while its forwarder is busy reopens with its
// backlog counted and forwards the rest, in order, with nothing forwarded
// twice, on the same metrics registry.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	opts := testOptions(dir, func(o *testConfig) { o.Registerer = reg; o.SegmentBytes = 2 << 10 })
	want := numbered([]string{"a", "b", "c"}, 60)
	const first = 20

	// The downstream acknowledges the first batches, then hangs on the
	// next one until Run is stopped.
	down := &fakeDownstream{}
	hung := make(chan struct{})
	s, err := openSpool(opts, &ctxBlocking{inner: down, after: first, hung: hung})
	if err != nil {
		t.Fatal(err)
	}
	enqueued := time.Now()
	for _, b := range want {
		mustPublish(t, s, b)
	}
	startRun(t, s)
	<-hung
	mustClose(t, s) // stops Run while it waits for the downstream

	if got := down.forwarded(); !slices.Equal(got, want[:first]) {
		t.Fatalf("before the restart, forwarded %v; want the first %d", got, first)
	}
	down2 := &fakeDownstream{}
	s2 := mustOpen(t, opts, down2)
	defer mustClose(t, s2)
	checkBacklog(t, s2, int64(len(want)-first), spooledSize(want[first:]...))
	if age, max := metricValue(t, s2.m.oldestAge), time.Since(enqueued).Seconds(); age > max {
		t.Errorf("oldest batch age after reopening: got %vs; want at most %vs, the time since the first Publish", age, max)
	}
	startRun(t, s2)
	waitFor(t, "the backlog forwarded", func() bool { return len(down2.forwarded()) >= len(want)-first })
	if got := down2.forwarded(); !slices.Equal(got, want[first:]) {
		t.Fatalf("after the restart, forwarded %v; want batches %d.. in order", got, first)
	}
	waitFor(t, "empty backlog", func() bool { b, _ := s2.backlog.snapshot(); return b == 0 })
	checkBacklog(t, s2, 0, 0)
	if got := metricValue(t, s2.m.forwardedBatches); got != float64(len(want)) {
		t.Errorf("forwarded batches counter across both opens: got %v; want %d", got, len(want))
	}
}

// ctxBlocking acknowledges after batches, then blocks every Publish until
// its context ends.
type ctxBlocking struct {
	inner queue.Producer
	after int
	hung  chan struct{}
	mu    sync.Mutex
	n     int
}

func (c *ctxBlocking) Publish(ctx context.Context, key string, value []byte) error {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	if n <= c.after {
		return c.inner.Publish(ctx, key, value)
	}
	if n == c.after+1 {
		close(c.hung)
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestStop: Run returns nil promptly when its context ends or the spool is
// closed, also while it retries, and Publish after Close is refused.
func TestStop(t *testing.T) {
	for _, how := range []string{"context", "close"} {
		t.Run(how, func(t *testing.T) {
			down := &fakeDownstream{fail: alwaysFail}
			s := mustOpen(t, testOptions(t.TempDir(), func(o *testConfig) { o.RetryMin, o.RetryMax = time.Hour, time.Hour }), down)
			mustPublish(t, s, batch{"k", "v"})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			waitFor(t, "a refused attempt", func() bool { return down.callsOf("v") > 0 })
			if how == "context" {
				cancel()
			} else {
				mustClose(t, s)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: got %v; want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return")
			}
			mustClose(t, s)
			if err := s.Publish(context.Background(), "k", []byte("v")); !errors.Is(err, queue.ErrClosed) {
				t.Errorf("Publish after Close: got %v; want queue.ErrClosed", err)
			}
			if err := s.Run(context.Background()); !errors.Is(err, queue.ErrClosed) {
				t.Errorf("Run after Close: got %v; want queue.ErrClosed", err)
			}
		})
	}
}

// TestDownstreamClosed: Run stops with an error, rather than retrying for
// ever, when the downstream producer was closed under it.
func TestDownstreamClosed(t *testing.T) {
	down := &fakeDownstream{fail: func(batch, int) error { return queue.ErrClosed }}
	s := mustOpen(t, testOptions(t.TempDir()), down)
	defer mustClose(t, s)
	mustPublish(t, s, batch{"k", "v"})
	if err := s.Run(context.Background()); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Run: got %v; want an error wrapping queue.ErrClosed", err)
	}
	checkBacklog(t, s, 1, spooledSize(batch{"k", "v"}))
}

// TestSharedRegistry: the spool's metrics and its disk queue's can share a
// registry with another disk queue and with a spool opened before.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	q, err := diskqueue.Open(diskqueue.Options{Dir: t.TempDir(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, q)
	dir := t.TempDir()
	for range 2 {
		s := mustOpen(t, testOptions(dir, func(o *testConfig) { o.Registerer = reg }), &fakeDownstream{})
		mustClose(t, s)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "vigil_collector_spool_") {
			names = append(names, strings.TrimPrefix(mf.GetName(), "vigil_collector_spool_"))
		}
	}
	want := []string{"batches", "bytes", "forward_errors_total", "forward_latency_seconds", "forwarded_batches_total",
		"forwarded_bytes_total", "lane_batches", "lane_bytes", "max_bytes", "oldest_batch_age_seconds"}
	if !slices.Equal(names, want) {
		t.Errorf("spool metrics: got %v; want %v", names, want)
	}
}

func TestOptionsErrors(t *testing.T) {
	f := func(o testConfig, want string) {
		t.Helper()
		_, err := openSpool(o, &fakeDownstream{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%+v): got %v; want an error containing %q", o, err, want)
		}
	}
	f(testConfig{}, "Dir is empty")
	f(testConfig{Dir: t.TempDir(), MaxBytes: -1}, "MaxBytes is -1")
	f(testConfig{Dir: t.TempDir(), Options: Options{RetryMin: time.Second, RetryMax: time.Millisecond}}, "RetryMax: 1ms is shorter than RetryMin 1s")
	if _, err := openSpool(testConfig{Dir: t.TempDir()}, nil); err == nil {
		t.Error("Open with a nil downstream: got nil error")
	}
	if _, err := Open(DefaultOptions(), Lanes{}, &fakeDownstream{}); err == nil {
		t.Error("Open with a nil log: got nil error")
	}
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir), &fakeDownstream{})
	defer mustClose(t, s)
	if _, err := openSpool(testOptions(dir), &fakeDownstream{}); !errors.Is(err, diskqueue.ErrLocked) {
		t.Errorf("second Open of one directory: got %v; want diskqueue.ErrLocked", err)
	}
	// Open closes the log it was given when it fails: the directory is free.
	dir = t.TempDir()
	if _, err := openSpool(testOptions(dir, func(o *testConfig) { o.MaxCoalesce = -1 }), &fakeDownstream{}); err == nil {
		t.Fatal("Open with MaxCoalesce -1: got nil error")
	}
	mustClose(t, mustOpen(t, testOptions(dir), &fakeDownstream{}))
}

func firstDiff(got, want []batch) int {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return i
		}
	}
	return min(len(got), len(want))
}

// TestCoalescedBatchesAreOneValidRequest spools OTLP batches of two keys
// before forwarding starts: batches of one key travel together, and each
// downstream message decodes to exactly the records of the batches it
// carries, in order.
func TestCoalescedBatchesAreOneValidRequest(t *testing.T) {
	down := &fakeDownstream{}
	s := mustOpen(t, testOptions(t.TempDir(), func(o *testConfig) { o.MaxCoalesce = 8 }), down)
	defer mustClose(t, s)
	var want []string
	keys := []string{"a", "a", "a", "b", "b", "a"}
	for i, k := range keys {
		msg := fmt.Sprintf("%s-%d", k, i)
		want = append(want, msg)
		v, err := otlplogs.Marshal([]model.LogRecord{{Service: k, Message: msg}})
		if err != nil {
			t.Fatal(err)
		}
		mustPublish(t, s, batch{k, string(v)})
	}
	startRun(t, s)
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	var got []string
	msgs := down.forwarded()
	for _, v := range msgs {
		recs, err := otlplogs.Unmarshal(nil, []byte(v.value))
		if err != nil {
			t.Fatalf("downstream message does not decode: %v", err)
		}
		for _, r := range recs {
			got = append(got, r.Message)
		}
	}
	if !slices.Equal(got, want) || len(msgs) != 3 {
		t.Errorf("got %d messages carrying %v; want 3 (a a a | b b | a) carrying %v", len(msgs), got, want)
	}
}
