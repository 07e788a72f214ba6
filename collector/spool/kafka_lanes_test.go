package spool

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// ackRecorder passes batches to a Kafka producer and remembers the order
// in which Kafka acknowledged them, and which were refused (only those may
// reach Kafka twice).
type ackRecorder struct {
	retryRecorder
	mu    sync.Mutex
	acked []batch
}

func (r *ackRecorder) Publish(ctx context.Context, key string, value []byte) error {
	return r.PublishBatch(ctx, []queue.Record{{Key: key, Value: value}})
}

func (r *ackRecorder) PublishBatch(ctx context.Context, records []queue.Record) error {
	if err := r.retryRecorder.PublishBatch(ctx, records); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range records {
		r.acked = append(r.acked, batch{rec.Key, string(rec.Value)})
	}
	return nil
}

func (r *ackRecorder) ackedBatches() []batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.acked)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	addr, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// proxyTo starts listening on addr and relays each connection to target
// until the test ends.
func proxyTo(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", addr, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(u, c); u.Close() })
			wg.Go(func() { _, _ = io.Copy(c, u); c.Close() })
		}
	})
}

// TestKafkaBacklogByGrade spools batches of the four grades, interleaved,
// while the spool's Kafka broker address is a closed port, then makes it
// reachable (a relay to the real Kafka on that port) and checks that Kafka
// acknowledged every grade-1 batch before any of grade 2, and so on down
// to grade 4, each grade's in spool order; and that the topic holds every
// batch, duplicates only of refused forwards.
func TestKafkaBacklogByGrade(t *testing.T) {
	const perGrade = 150
	kopts := kafkaOptions(t)
	addr := closedPort(t)
	popts := kopts
	popts.Brokers = []string{addr}
	popts.PublishTimeout = 2 * time.Second
	kp, err := kafka.NewProducer(popts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, kp)
	down := &ackRecorder{retryRecorder: retryRecorder{p: kp, retried: map[string]bool{}, errs: map[string]int{}}}
	s, err := openSpool(testOptions(t.TempDir(), func(o *testConfig) {
		o.RetryMin, o.RetryMax = 10*time.Millisecond, 200*time.Millisecond
		o.MaxCoalesce = 1
	}), down)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	startRun(t, s)
	var want []batch
	var all [5][]batch
	for i := range 4 * perGrade {
		g := 4 - i%4
		b := gradedBatch(g, i/4)
		publishGraded(t, s, g, b)
		all[g] = append(all[g], b)
	}
	for g := 1; g <= 4; g++ {
		want = append(want, all[g]...)
	}
	waitFor(t, "forwards refused by the closed port", func() bool {
		return metricValue(t, s.m.forwardErrors.WithLabelValues(reasonError))+metricValue(t, s.m.forwardErrors.WithLabelValues(reasonTimeout)) >= 3
	})
	if n := len(down.ackedBatches()); n != 0 {
		t.Fatalf("%d batches acknowledged through a closed port", n)
	}
	proxyTo(t, addr, testBrokers(t)[0])
	waitFor(t, "the backlog drained into Kafka", func() bool { b, _ := s.backlog.snapshot(); return b <= 0 })
	got := down.ackedBatches()
	if !slices.Equal(got, want) {
		i := firstDiff(got, want)
		t.Fatalf("Kafka acknowledged %d batches, first difference at %d (%v); want the %d spooled, grade 1's first, each grade's in order",
			len(got), i, got[min(i, len(got)-1)], len(want))
	}
	t.Logf("Kafka acknowledged all %d batches by grade after %v forward errors %v", len(got),
		metricValue(t, s.m.forwardErrors.WithLabelValues(reasonError))+metricValue(t, s.m.forwardErrors.WithLabelValues(reasonTimeout)), down.errs)
	checkGradedTopic(t, kopts, want, down.retried)
}

// checkGradedTopic consumes the topic and checks that it holds every
// batch of want, each key's in order, and duplicates only of retried ones.
func checkGradedTopic(t *testing.T, opts kafka.Options, want []batch, retried map[string]bool) {
	t.Helper()
	c, err := kafka.NewConsumer(opts)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer mustClose(t, c)
	next := map[string]int{} // index in the key's batches
	byKey := map[string][]batch{}
	for _, b := range want {
		byKey[b.key] = append(byKey[b.key], b)
	}
	distinct := 0
	for distinct < len(want) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := c.Fetch(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("consumed %d of %d batches; nothing more for 30s", distinct, len(want))
		}
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		b := batch{m.Key, string(m.Value)}
		kb := byKey[m.Key]
		switch i := slices.Index(kb, b); {
		case i < 0:
			t.Fatalf("message %.40q under key %q is not a batch of this test", m.Value, m.Key)
		case i == next[m.Key]:
			next[m.Key]++
			distinct++
		case i < next[m.Key] && retried[b.value]:
		case i < next[m.Key]:
			t.Errorf("key %s: batch %s arrived again, but its forward never failed", m.Key, strings.SplitN(b.value, "/", 3)[1])
		default:
			t.Fatalf("key %s: batch %d arrived before %d; batches are missing or out of order", m.Key, i, next[m.Key])
		}
	}
}
