package diskqueue

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

func records(key string, vals []string) []queue.Record {
	out := make([]queue.Record, len(vals))
	for i, v := range vals {
		out[i] = queue.Record{Key: key, Value: []byte(v)}
	}
	return out
}

// TestPublishBatch: the records of a batch are delivered in order, after
// one sync; a batch that does not fit is refused whole, one that never
// could as too large.
func TestPublishBatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	size := recordSize(defaultTenantLen, 1, 2)
	dir := t.TempDir()
	q := mustOpen(t, dir, func(o *Options) { o.MaxBytes = 5 * size; o.Registerer = reg })
	defer mustClose(t, q)
	if err := q.PublishBatch(context.Background(), records("k", numbered("v", 3))); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	if got["vigil_queue_published_messages_total"] != 3 || got["vigil_queue_fsync_duration_seconds_count"] == 0 {
		t.Fatalf("after a batch of 3: metrics %v", got)
	}
	syncs := got["vigil_queue_fsync_duration_seconds_count"]
	if err := q.PublishBatch(context.Background(), records("k", numbered("w", 3))); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("PublishBatch of 3 into room for 2: got %v; want ErrFull", err)
	}
	if err := q.PublishBatch(context.Background(), records("k", numbered("w", 6))); !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("PublishBatch of more than MaxBytes: got %v; want an error wrapping queue.ErrTooLarge", err)
	}
	if err := q.PublishBatch(context.Background(), records("k", numbered("x", 2))); err != nil {
		t.Fatal(err)
	}
	if got := gather(t, reg)["vigil_queue_fsync_duration_seconds_count"] - syncs; got != 1 {
		t.Errorf("fsyncs for a batch of 2: got %v; want 1", got)
	}
	want := withKey("k", append(numbered("v", 3), numbered("x", 2)...))
	if got := values(fetchAll(t, q)); !slices.Equal(got, want) {
		t.Errorf("fetched %v; want %v", got, want)
	}
	if err := q.PublishBatch(context.Background(), nil); err != nil {
		t.Errorf("PublishBatch of nothing: %v", err)
	}
}

// TestMaxMessageBytes: MaxMessageBytes is the largest key and value one
// Publish takes, whatever its tenant: with the longest tenant id it fills
// MaxBytes.
func TestMaxMessageBytes(t *testing.T) {
	q := mustOpen(t, t.TempDir(), func(o *Options) { o.MaxBytes = 400 })
	defer mustClose(t, q)
	n := q.MaxMessageBytes()
	longest := strings.Repeat("t", maxTenantLen)
	if !auth.ValidTenant(longest) || auth.ValidTenant(longest+"t") {
		t.Fatalf("maxTenantLen %d is not the longest tenant id auth.ValidTenant accepts", maxTenantLen)
	}
	ctx := auth.WithTenant(context.Background(), longest)
	if err := q.Publish(ctx, "k", make([]byte, n)); !errors.Is(err, queue.ErrTooLarge) {
		t.Errorf("Publish of MaxMessageBytes (%d) + 1 bytes: got %v; want ErrTooLarge", n, err)
	}
	if err := q.Publish(ctx, "k", make([]byte, n-1)); err != nil {
		t.Errorf("Publish of MaxMessageBytes (%d) bytes: %v", n, err)
	}
	if got, want := q.RecordSize(longest, "k", n-1), q.MaxBytes(); got != want {
		t.Errorf("RecordSize of the largest message: got %d; want MaxBytes %d", got, want)
	}
	if got := queue.MaxMessageBytes(q); got != n {
		t.Errorf("queue.MaxMessageBytes: got %d; want %d", got, n)
	}
}

// TestPending: Pending shows the records Fetch has yet to return without
// fetching them, across segments and after a reopen.
func TestPending(t *testing.T) {
	dir := t.TempDir()
	small := func(o *Options) { o.SegmentBytes = 3 * recordSize(defaultTenantLen, 1, 2) }
	q := mustOpen(t, dir, small)
	publishAll(t, q, "k", numbered("v", 10))
	pending := func(q *Queue) []string {
		t.Helper()
		var got []queue.Message
		if err := q.Pending(func(m queue.Message) error { got = append(got, m); return nil }); err != nil {
			t.Fatalf("Pending: %v", err)
		}
		return values(got)
	}
	if got, want := pending(q), withKey("k", numbered("v", 10)); !slices.Equal(got, want) {
		t.Fatalf("Pending: got %v; want %v", got, want)
	}
	var m queue.Message
	for range 4 {
		m = mustFetch(t, q)
	}
	if got, want := pending(q), withKey("k", numbered("v", 10)[4:]); !slices.Equal(got, want) {
		t.Fatalf("Pending after 4 fetches: got %v; want %v", got, want)
	}
	mustCommit(t, q, m)
	mustClose(t, q)

	q = mustOpen(t, dir, small)
	defer mustClose(t, q)
	if got, want := pending(q), withKey("k", numbered("v", 10)[4:]); !slices.Equal(got, want) {
		t.Fatalf("Pending after reopening: got %v; want %v", got, want)
	}
	if got, want := values(fetchAll(t, q)), withKey("k", numbered("v", 10)[4:]); !slices.Equal(got, want) {
		t.Fatalf("Fetch after Pending: got %v; want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := q.Pending(func(queue.Message) error { n++; return stop }); err != nil || n != 0 {
		t.Errorf("Pending with nothing pending: %v, %d calls", err, n)
	}
	publishAll(t, q, "k", []string{"a", "b"})
	if err := q.Pending(func(queue.Message) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Pending stops at fn's error: got %v after %d calls; want %v after 1", err, n, stop)
	}
}
