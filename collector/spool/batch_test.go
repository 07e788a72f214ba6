package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

// batchDownstream is a downstream with PublishBatch: it records each call
// it acknowledged, fails the first failures calls, and reports max as its
// MaxMessageBytes.
type batchDownstream struct {
	mu       sync.Mutex
	calls    [][]batch // acknowledged PublishBatch calls
	attempts int
	failures int
	max      int
}

func (d *batchDownstream) Publish(ctx context.Context, key string, value []byte) error {
	return errors.New("Publish called on a downstream with PublishBatch")
}

func (d *batchDownstream) PublishBatch(ctx context.Context, records []queue.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.attempts++; d.attempts <= d.failures {
		return errDown
	}
	var call []batch
	for _, r := range records {
		if d.max > 0 && len(r.Key)+len(r.Value) > d.max {
			return fmt.Errorf("%w: %d bytes", queue.ErrTooLarge, len(r.Key)+len(r.Value))
		}
		call = append(call, batch{r.Key, string(r.Value)})
	}
	d.calls = append(d.calls, call)
	return nil
}

func (d *batchDownstream) MaxMessageBytes() int { return d.max }

func (d *batchDownstream) forwarded() (calls [][]batch, all []batch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.calls {
		all = append(all, c...)
	}
	return slices.Clone(d.calls), all
}

// TestForwardWithPublishBatch: batches spooled together reach a downstream
// that has PublishBatch in one call, retried whole when refused, with
// neighbours of one key merged, never beyond the downstream's
// MaxMessageBytes; the backlog empties.
func TestForwardWithPublishBatch(t *testing.T) {
	down := &batchDownstream{failures: 2, max: 40}
	s := mustOpen(t, testOptions(t.TempDir(), func(o *testConfig) { o.MaxCoalesce = 8 }), down)
	defer mustClose(t, s)
	in := []queue.Record{
		{Key: "a", Value: []byte("a0.")}, {Key: "a", Value: []byte("a1.")}, {Key: "b", Value: []byte("b0.")},
		{Key: "a", Value: []byte("a2.")}, {Key: "a", Value: []byte(strings.Repeat("x", 37))}, {Key: "a", Value: []byte("a4.")},
	}
	if err := s.PublishBatch(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	checkBacklog(t, s, int64(len(in)), spooledSize(batch{"a", "a0."}, batch{"a", "a1."}, batch{"b", "b0."}, batch{"a", "a2."},
		batch{"a", strings.Repeat("x", 37)}, batch{"a", "a4."}))
	startRun(t, s)
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	calls, got := down.forwarded()
	want := []batch{{"a", "a0.a1."}, {"b", "b0."}, {"a", "a2."}, {"a", strings.Repeat("x", 37)}, {"a", "a4."}}
	if len(calls) != 1 || !slices.Equal(got, want) {
		t.Errorf("forwarded %v in %d calls; want %v in 1", got, len(calls), want)
	}
	if got := metricValue(t, s.m.forwardErrors.WithLabelValues(reasonError)); got != 2 {
		t.Errorf("forward errors: got %v; want 2", got)
	}
	if got := metricValue(t, s.m.forwardedBatches); got != float64(len(in)) {
		t.Errorf("forwarded batches counter: got %v; want %d", got, len(in))
	}
	checkBacklog(t, s, 0, 0)
}

// TestPublishBatch: a batch of records is spooled whole or not at all.
func TestPublishBatch(t *testing.T) {
	value := strings.Repeat("v", 100)
	size := spooledSize(batch{"k", value})
	s := mustOpen(t, testOptions(t.TempDir(), func(o *testConfig) { o.MaxBytes = 5 * size }), &fakeDownstream{})
	defer mustClose(t, s)
	recs := func(n int) []queue.Record {
		var out []queue.Record
		for range n {
			out = append(out, queue.Record{Key: "k", Value: []byte(value)})
		}
		return out
	}
	if err := s.PublishBatch(context.Background(), recs(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishBatch(context.Background(), recs(3)); !errors.Is(err, queue.ErrFull) {
		t.Errorf("PublishBatch of 3 into room for 2: got %v; want queue.ErrFull", err)
	}
	if err := s.PublishBatch(context.Background(), recs(6)); !errors.Is(err, queue.ErrTooLarge) {
		t.Errorf("PublishBatch of more than the spool holds: got %v; want queue.ErrTooLarge", err)
	}
	checkBacklog(t, s, 3, 3*size)
	if got, want := s.MaxMessageBytes(), int(5*size-recordOverhead-128-prefixSize); got != want {
		t.Errorf("MaxMessageBytes: got %d; want %d (the log's bound less framing, the longest tenant id and prefix)", got, want)
	}
	s2 := mustOpen(t, testOptions(t.TempDir()), &batchDownstream{max: 1000})
	defer mustClose(t, s2)
	if got := s2.MaxMessageBytes(); got != 1000 {
		t.Errorf("MaxMessageBytes with a downstream taking 1000 bytes: got %d; want 1000", got)
	}
}

// TestOpensSpoolOfRelease opens a spool directory written by the release
// before batches were published together (commit 1632776: 60 batches of
// three keys, one of them empty, over six 4 KiB segments, the first 12
// forwarded and committed) and checks that the other 48 are counted and
// forwarded as they were spooled, in order.
func TestOpensSpoolOfRelease(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "spool-1632776"), dir)
	releaseValue := func(key string, seq int) string {
		return fmt.Sprintf("%s/%d/%s", key, seq, strings.Repeat("x", seq*53%700))
	}
	var want []batch
	keys := []string{"svc-a", "svc-b", ""}
	for i := 12; i < 60; i++ {
		want = append(want, batch{keys[i%3], releaseValue(keys[i%3], i/3)})
	}
	down := &fakeDownstream{}
	s := mustOpen(t, testOptions(dir, func(o *testConfig) { o.SegmentBytes = 4 << 10 }), down)
	defer mustClose(t, s)
	// The batches were spooled at once, so spooledSize counts them as the
	// old spool did.
	checkBacklog(t, s, int64(len(want)), spooledSize(want...))
	startRun(t, s)
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	if got := down.forwarded(); !slices.Equal(got, want) {
		t.Fatalf("forwarded %d batches (first difference at %d); want the %d left in the release's spool, in order", len(got), firstDiff(got, want), len(want))
	}
	checkDefaultTenant(t, down.forwardedTenants()[:len(want)])
	mustPublish(t, s, batch{"svc-a", "new"})
	waitFor(t, "the new batch forwarded", func() bool { return len(down.forwarded()) == len(want)+1 })
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpensSingleLogSpool opens a spool directory written by the release
// with one log for every grade (commit f3a959a: 45 batches of three keys
// over four 4 KiB segments, the first 9 forwarded and committed) and
// checks that the other 36 are counted and forwarded as they were
// spooled, in order.
func TestOpensSingleLogSpool(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "spool-f3a959a"), dir)
	keys := []string{"svc-a", "svc-b", "0af7651916cd43dd8448eb211c80319c"}
	var want []batch
	for i := 9; i < 45; i++ {
		k := keys[i%3]
		want = append(want, batch{k, fmt.Sprintf("%s/%d/%s", k, i/3, strings.Repeat("y", i*61%500))})
	}
	down := &fakeDownstream{}
	s := mustOpen(t, testOptions(dir, func(o *testConfig) { o.SegmentBytes = 4 << 10 }), down)
	defer mustClose(t, s)
	checkBacklog(t, s, int64(len(want)), spooledSize(want...))
	startRun(t, s)
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	if got := down.forwarded(); !slices.Equal(got, want) {
		t.Fatalf("forwarded %d batches (first difference at %d); want the %d left in the release's spool, in order", len(got), firstDiff(got, want), len(want))
	}
	checkDefaultTenant(t, down.forwardedTenants()[:len(want)])
}

// checkDefaultTenant checks that batches spooled by a release before
// tenants were forwarded as the default tenant's.
func checkDefaultTenant(t *testing.T, tenants []string) {
	t.Helper()
	for i, tenant := range tenants {
		if tenant != auth.DefaultTenant {
			t.Fatalf("batch %d of the release's spool forwarded for tenant %q; want %q", i, tenant, auth.DefaultTenant)
		}
	}
}
