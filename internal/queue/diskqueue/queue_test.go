package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

func TestRoundTrip(t *testing.T) {
	q := mustOpen(t, t.TempDir())
	defer mustClose(t, q)
	f := func(key string, value []byte) {
		t.Helper()
		if err := q.Publish(context.Background(), key, value); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		m := mustFetch(t, q)
		if m.Key != key || string(m.Value) != string(value) {
			t.Fatalf("got key %q, %d-byte value; want %q, %d bytes", m.Key, len(m.Value), key, len(value))
		}
		mustCommit(t, q, m)
	}
	f("", nil)
	f("checkout", []byte("batch"))
	f("binary", []byte{0, 0xff, 0, '\n'})
	f(strings.Repeat("k", maxKeyLen), []byte("longest key"))
	f("big", []byte(strings.Repeat("0123456789abcdef", 1<<16)))
}

func TestOrdering(t *testing.T) {
	q := mustOpen(t, t.TempDir(), func(o *Options) { o.SegmentBytes = 1000 })
	defer mustClose(t, q)
	want := numbered("v", 300)
	publishAll(t, q, "k", want)
	var got []string
	prev := int64(-1)
	for range want {
		m := mustFetch(t, q)
		if m.Position <= prev {
			t.Fatalf("position %d follows %d; want increasing positions", m.Position, prev)
		}
		prev = m.Position
		got = append(got, string(m.Value))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}

// TestReopenDeliversFromCommitted checks that a restart redelivers exactly
// the messages after the last commit, whatever was fetched.
func TestReopenDeliversFromCommitted(t *testing.T) {
	f := func(fetch, commit int, want []string) {
		t.Helper()
		dir := t.TempDir()
		q := mustOpen(t, dir)
		publishAll(t, q, "k", numbered("v", 5))
		var fetched []queue.Message
		for range fetch {
			fetched = append(fetched, mustFetch(t, q))
		}
		if commit > 0 {
			mustCommit(t, q, fetched[commit-1])
		}
		mustClose(t, q)

		q = mustOpen(t, dir)
		defer mustClose(t, q)
		if got := values(fetchAll(t, q)); !slices.Equal(got, withKey("k", want)) {
			t.Fatalf("fetched %d, committed %d: after reopen got %v; want %v", fetch, commit, got, want)
		}
	}
	f(0, 0, numbered("v", 5))
	f(5, 0, numbered("v", 5))
	f(5, 2, numbered("v", 5)[2:])
	f(3, 3, numbered("v", 5)[3:])
	f(5, 5, nil)
}

func TestCommitIsCumulativeAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir)
	publishAll(t, q, "k", numbered("v", 4))
	m0, m1, m2 := mustFetch(t, q), mustFetch(t, q), mustFetch(t, q)
	mustCommit(t, q, m1)
	mustCommit(t, q, m0) // older than the committed position: no effect
	mustCommit(t, q, m1) // again: no effect
	if err := q.Commit(context.Background(), queue.Message{Position: m2.Position + 1}); err == nil {
		t.Fatalf("Commit of a position that was never fetched succeeded; want an error")
	}
	mustClose(t, q)
	q = mustOpen(t, dir)
	defer mustClose(t, q)
	if got, want := values(fetchAll(t, q)), []string{"k=v2", "k=v3"}; !slices.Equal(got, want) {
		t.Fatalf("after reopen got %v; want %v", got, want)
	}
}

func TestErrFullThenReclaimed(t *testing.T) {
	dir := t.TempDir()
	const value = "0123456789" // 10 bytes: a 21-byte record with key "k"
	size := recordSize(defaultTenantLen, 1, len(value))
	q := mustOpen(t, dir, func(o *Options) { o.MaxBytes = 3 * size })
	defer mustClose(t, q)
	publishAll(t, q, "k", []string{value, value, value})
	before := fileSize(t, lastSegment(t, dir))
	if err := q.Publish(context.Background(), "k", []byte(value)); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Publish beyond the bound: got %v; want ErrFull", err)
	}
	if after := fileSize(t, lastSegment(t, dir)); after != before {
		t.Fatalf("segment grew from %d to %d bytes on ErrFull; want nothing written", before, after)
	}
	// Fetching does not free space; committing does.
	m := mustFetch(t, q)
	if err := q.Publish(context.Background(), "k", []byte(value)); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Publish after Fetch without Commit: got %v; want ErrFull", err)
	}
	mustCommit(t, q, m)
	mustPublish(t, q, "k", value)
	if err := q.Publish(context.Background(), "k", []byte(value)); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Publish beyond the bound again: got %v; want ErrFull", err)
	}
}

func TestPublishRejectsWhatCanNeverFit(t *testing.T) {
	q := mustOpen(t, t.TempDir(), func(o *Options) { o.MaxBytes = 100 })
	defer mustClose(t, q)
	f := func(key string, valueLen int, wantTooLarge bool) {
		t.Helper()
		err := q.Publish(context.Background(), key, make([]byte, valueLen))
		if err == nil || errors.Is(err, queue.ErrFull) || errors.Is(err, queue.ErrTooLarge) != wantTooLarge {
			t.Fatalf("Publish(%d-byte key, %d-byte value): got %v; want a permanent error (ErrTooLarge: %v)", len(key), valueLen, err, wantTooLarge)
		}
	}
	// A record takes 11 bytes of framing and the 7 of tenant "default".
	f("k", 100, true)
	f("k", 82, true) // 101 bytes with the header and tenant
	f(strings.Repeat("k", maxKeyLen+1), 0, false)
	mustPublish(t, q, "k", strings.Repeat("v", 81)) // exactly 100 bytes
}

func TestSegmentRolloverAndDeletion(t *testing.T) {
	dir := t.TempDir()
	size := recordSize(defaultTenantLen, 1, 2) // "k" + "vN"
	q := mustOpen(t, dir, func(o *Options) { o.SegmentBytes = 3 * size })
	publishAll(t, q, "k", numbered("v", 8))
	if got := segmentFiles(t, dir); len(got) != 3 {
		t.Fatalf("8 records, 3 per segment: got segments %v; want 3", got)
	}
	var msgs []queue.Message
	for range 8 {
		msgs = append(msgs, mustFetch(t, q))
	}
	f := func(commit int, want []string) {
		t.Helper()
		mustCommit(t, q, msgs[commit])
		if got := segmentFiles(t, dir); !slices.Equal(got, want) {
			t.Fatalf("after committing v%d: got segments %v; want %v", commit, got, want)
		}
	}
	f(1, []string{segmentName(0), segmentName(3 * size), segmentName(6 * size)})
	f(2, []string{segmentName(3 * size), segmentName(6 * size)})
	f(7, []string{segmentName(6 * size)}) // the last segment stays for appending
	mustClose(t, q)

	q = mustOpen(t, dir, func(o *Options) { o.SegmentBytes = 3 * size })
	defer mustClose(t, q)
	mustPublish(t, q, "k", "v8")
	if got, want := values(fetchAll(t, q)), []string{"k=v8"}; !slices.Equal(got, want) {
		t.Fatalf("after reopen got %v; want %v", got, want)
	}
}

func TestConcurrentPublishers(t *testing.T) {
	const publishers, perPublisher = 8, 100
	q := mustOpen(t, t.TempDir(), func(o *Options) { o.SegmentBytes = 16 << 10 })
	defer mustClose(t, q)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(map[string][]int)
	done := make(chan error, 1)
	go func() { // the one consumer goroutine
		for range publishers * perPublisher {
			m, err := q.Fetch(ctx)
			if err != nil {
				done <- err
				return
			}
			var seq int
			if _, err := fmt.Sscanf(string(m.Value[:8]), "%08d", &seq); err != nil {
				done <- fmt.Errorf("value %q: %w", m.Value, err)
				return
			}
			got[m.Key] = append(got[m.Key], seq)
			if seq%10 == 9 {
				if err := q.Commit(ctx, m); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				value := fmt.Appendf(nil, "%08d%s", i, strings.Repeat("x", 100*p))
				if err := q.Publish(ctx, fmt.Sprintf("p%d", p), value); err != nil {
					t.Errorf("publisher %d, message %d: %v", p, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("consumer: %v", err)
	}
	want := make([]int, perPublisher)
	for i := range want {
		want[i] = i
	}
	for p := range publishers {
		if key := fmt.Sprintf("p%d", p); !slices.Equal(got[key], want) {
			t.Fatalf("key %s: got sequence %v; want 0..%d in order", key, got[key], perPublisher-1)
		}
	}
}

func TestCloseUnblocksFetch(t *testing.T) {
	q := mustOpen(t, t.TempDir())
	errc := make(chan error, 1)
	go func() {
		_, err := q.Fetch(context.Background())
		errc <- err
	}()
	mustClose(t, q)
	if err := <-errc; !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Fetch blocked during Close: got %v; want ErrClosed", err)
	}
	if err := q.Publish(context.Background(), "k", nil); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Publish after Close: got %v; want ErrClosed", err)
	}
	if _, err := q.Fetch(context.Background()); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Fetch after Close: got %v; want ErrClosed", err)
	}
}

func TestFetchHonoursContext(t *testing.T) {
	q := mustOpen(t, t.TempDir())
	defer mustClose(t, q)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with a cancelled context: got %v; want context.Canceled", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	f := func(mod func(*Options), wantErr string) {
		t.Helper()
		opts := testOptions(t.TempDir(), mod)
		q, err := Open(opts)
		if err == nil {
			q.Close()
			t.Fatalf("Open(%+v) succeeded; want an error containing %q", opts, wantErr)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Open: got error %q; want it to contain %q", err, wantErr)
		}
	}
	f(func(o *Options) { o.Dir = "" }, "Dir is empty")
	f(func(o *Options) { o.MaxBytes = 5 }, "MaxBytes is 5")
	f(func(o *Options) { o.SegmentBytes = -1 }, "SegmentBytes is -1")
}
