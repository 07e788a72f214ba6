package diskqueue

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

type closer interface{ Close() error }

var (
	openAll          = func(o Options) (closer, error) { return Open(o) }
	openProducerRole = func(o Options) (closer, error) { return OpenProducer(o) }
	openConsumerRole = func(o Options) (closer, error) { return OpenConsumer(o) }
)

func TestRoleLocks(t *testing.T) {
	f := func(name string, first, second func(Options) (closer, error), wantLocked bool) {
		t.Helper()
		opts := testOptions(t.TempDir())
		a, err := first(opts)
		if err != nil {
			t.Fatalf("%s: first open: %v", name, err)
		}
		b, err := second(opts)
		if gotLocked := errors.Is(err, ErrLocked); gotLocked != wantLocked {
			t.Fatalf("%s: second open: got error %v; want locked: %v", name, err, wantLocked)
		}
		if err == nil {
			mustClose(t, b)
		} else if !errors.Is(err, ErrLocked) {
			t.Fatalf("%s: second open: %v", name, err)
		}
		mustClose(t, a)
		// Closing releases the lock.
		b, err = second(opts)
		if err != nil {
			t.Fatalf("%s: open after close: %v", name, err)
		}
		mustClose(t, b)
	}
	f("two producers", openProducerRole, openProducerRole, true)
	f("two consumers", openConsumerRole, openConsumerRole, true)
	f("all-in-one, then producer", openAll, openProducerRole, true)
	f("all-in-one, then consumer", openAll, openConsumerRole, true)
	f("producer, then all-in-one", openProducerRole, openAll, true)
	f("producer and consumer", openProducerRole, openConsumerRole, false)
}

// TestSeparateRoles uses a producer and a consumer with their own handles,
// as the collector and the ingester would in two processes.
func TestSeparateRoles(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenConsumer(testOptions(dir, func(o *Options) { o.SegmentBytes = 100 }))
	if err != nil {
		t.Fatal(err)
	}
	// The consumer may start first: it waits for a producer.
	type fetched struct {
		m   queue.Message
		err error
	}
	first := make(chan fetched, 1)
	go func() {
		m, err := c.Fetch(context.Background())
		first <- fetched{m, err}
	}()

	p, err := OpenProducer(testOptions(dir, func(o *Options) { o.SegmentBytes = 100 }))
	if err != nil {
		t.Fatal(err)
	}
	want := withKey("k", numbered("v", 20))
	publishAll(t, p, "k", numbered("v", 20))
	f := <-first
	if f.err != nil {
		t.Fatalf("Fetch before the producer opened: %v", f.err)
	}
	got := values([]queue.Message{f.m})
	var last queue.Message
	for range 19 {
		last = mustFetch(t, c)
		got = append(got, values([]queue.Message{last})...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	mustCommit(t, c, last)
	mustClose(t, c)
	if got := segmentFiles(t, dir); len(got) != 1 {
		t.Fatalf("after committing everything got segments %v; want only the one being written", got)
	}

	c, err = OpenConsumer(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	mustPublish(t, p, "k", "after")
	if m := mustFetch(t, c); string(m.Value) != "after" {
		t.Fatalf("after reopening the consumer got %q; want \"after\" (no redelivery)", m.Value)
	}
	mustClose(t, p)
}

// TestSeparateRolesBound checks that a producer sees commits made in
// another process before it reports ErrFull.
func TestSeparateRolesBound(t *testing.T) {
	dir := t.TempDir()
	size := recordSize(defaultTenantLen, 1, 2)
	opts := testOptions(dir, func(o *Options) { o.MaxBytes = 2 * size })
	p, err := OpenProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, p)
	c, err := OpenConsumer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	publishAll(t, p, "k", []string{"v0", "v1"})
	if err := p.Publish(context.Background(), "k", []byte("v2")); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Publish beyond the bound: got %v; want ErrFull", err)
	}
	mustCommit(t, c, mustFetch(t, c))
	// No waiting: the producer re-reads the offset file before ErrFull.
	mustPublish(t, p, "k", "v2")
}

func TestSeparateConsumerPollsForData(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenProducer(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, p)
	c, err := OpenConsumer(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*pollInterval)
	defer cancel()
	if m, err := c.Fetch(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch of an empty queue: got %q, %v; want DeadlineExceeded", m.Value, err)
	}
	errc := make(chan error, 1)
	go func() {
		time.Sleep(2 * pollInterval)
		errc <- p.Publish(context.Background(), "k", []byte("late"))
	}()
	if m := mustFetch(t, c); string(m.Value) != "late" {
		t.Fatalf("got %q; want \"late\"", m.Value)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Publish: %v", err)
	}
}
