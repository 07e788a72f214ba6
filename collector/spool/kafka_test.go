package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// Integration tests against the real Kafka in VIGIL_TEST_KAFKA.

// testBrokers returns the brokers in VIGIL_TEST_KAFKA. It skips the test
// when the variable is unset, or fails it when VIGIL_REQUIRE_SERVICES=1.
func testBrokers(tb testing.TB) []string {
	tb.Helper()
	addr := os.Getenv("VIGIL_TEST_KAFKA")
	if addr == "" {
		const how = "VIGIL_TEST_KAFKA is not set (start Kafka with deploy/local/kafka.sh up, then VIGIL_TEST_KAFKA=127.0.0.1:9092)"
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			tb.Fatal(how + " and VIGIL_REQUIRE_SERVICES=1")
		}
		tb.Skip(how)
	}
	return strings.Split(addr, ",")
}

// kafkaOptions returns options for a topic and group unique to this test,
// created now and deleted when the test ends.
func kafkaOptions(t *testing.T) kafka.Options {
	t.Helper()
	opts := kafka.DefaultOptions()
	opts.Brokers = testBrokers(t)
	opts.Topic = fmt.Sprintf("vigil-test.spool.%s.%d", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
	opts.GroupID = opts.Topic
	// Short, so that the forwarder retries several times in an outage.
	opts.PublishTimeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, opts); err != nil {
		t.Fatalf("EnsureTopic: %v", err)
	}
	t.Cleanup(func() {
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V2_8_0_0
		admin, err := sarama.NewClusterAdmin(opts.Brokers, cfg)
		if err != nil {
			t.Logf("cannot delete test topic %s: %v", opts.Topic, err)
			return
		}
		defer admin.Close()
		if err := admin.DeleteTopic(opts.Topic); err != nil {
			t.Logf("cannot delete test topic %s: %v", opts.Topic, err)
		}
	})
	return opts
}

// retryRecorder passes batches to a Kafka producer and remembers those
// whose Publish or PublishBatch failed: only they may reach Kafka twice.
type retryRecorder struct {
	p       *kafka.Producer
	mu      sync.Mutex
	retried map[string]bool
	errs    map[string]int // by error text, for the log
}

func (r *retryRecorder) Publish(ctx context.Context, key string, value []byte) error {
	return r.PublishBatch(ctx, []queue.Record{{Key: key, Value: value}})
}

func (r *retryRecorder) PublishBatch(ctx context.Context, records []queue.Record) error {
	err := r.p.PublishBatch(ctx, records)
	if err != nil {
		r.mu.Lock()
		for _, rec := range records {
			r.retried[string(rec.Value)] = true
		}
		msg := err.Error()
		if i := strings.IndexAny(msg, ":("); i > 0 {
			msg = msg[:i]
		}
		r.errs[msg]++
		r.mu.Unlock()
	}
	return err
}

const (
	kafkaBatches = 2000
	kafkaKeys    = 8
)

func kafkaValue(key string, seq int) []byte {
	v := fmt.Appendf(nil, "%s/%d/", key, seq)
	return append(v, strings.Repeat("k", 512+seq%512)...)
}

// TestKafka publishes 2,000 batches of 8 keys through the spool into a
// fresh topic and checks with the kafka package's consumer that every one
// arrived, each key's in order; duplicates are allowed only for batches
// whose forward failed and was retried. "outage" stops Kafka for about
// 15 s in the middle of the run (VIGIL_TEST_SERVICE_CONTROL=1, as make
// test sets).
func TestKafka(t *testing.T) {
	t.Run("steady", func(t *testing.T) { testKafka(t, false) })
	t.Run("outage", func(t *testing.T) {
		if os.Getenv("VIGIL_TEST_SERVICE_CONTROL") != "1" {
			testBrokers(t)
			t.Skip("stops and restarts the local Kafka with deploy/local/kafka.sh; set VIGIL_TEST_SERVICE_CONTROL=1 to run it")
		}
		testKafka(t, true)
	})
}

func testKafka(t *testing.T, outage bool) {
	kopts := kafkaOptions(t)
	kp, err := kafka.NewProducer(kopts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, kp)
	down := &retryRecorder{p: kp, retried: map[string]bool{}, errs: map[string]int{}}
	s, err := openSpool(testOptions(t.TempDir(), func(o *testConfig) {
		o.RetryMin, o.RetryMax = DefaultRetryMin, DefaultRetryMax
	}), down)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	stop := startRun(t, s)
	defer stop()

	// Publishers: one per key. Paced in the outage case so that batches
	// arrive before, during and after it.
	pace := time.Duration(0)
	if outage {
		pace = 80 * time.Millisecond // 8 keys: 100 batches/s, 20 s in all
	}
	start := time.Now()
	var wg sync.WaitGroup
	for k := range kafkaKeys {
		key := fmt.Sprintf("svc-%d", k)
		wg.Go(func() {
			for seq := range kafkaBatches / kafkaKeys {
				if err := s.Publish(context.Background(), key, kafkaValue(key, seq)); err != nil {
					t.Errorf("Publish(%s %d): %v", key, seq, err)
					return
				}
				time.Sleep(pace)
			}
		})
	}
	var maxBacklog int64
	if outage {
		// Kafka is unreachable from "down" until "up" returns: 10 s plus
		// its start-up time, about 15 s.
		maxBacklog = stopKafka(t, s, 3*time.Second, 10*time.Second)
	}
	wg.Wait()
	published := time.Since(start)
	waitFor(t, "the spool drained into Kafka", func() bool {
		b, _ := s.backlog.snapshot()
		return b <= 0 && metricValue(t, s.m.forwardedBatches) >= kafkaBatches
	})
	forwarded := time.Since(start)
	errs := metricValue(t, s.m.forwardErrors.WithLabelValues(reasonTimeout)) + metricValue(t, s.m.forwardErrors.WithLabelValues(reasonError))
	t.Logf("published %d batches in %v, all acknowledged by Kafka after %v (%.0f batches/s end to end); "+
		"largest backlog %d batches; %v failed forwards %v",
		kafkaBatches, published.Round(time.Millisecond), forwarded.Round(time.Millisecond),
		kafkaBatches/forwarded.Seconds(), maxBacklog, errs, down.errs)
	if outage && errs == 0 {
		t.Errorf("no forward failed while Kafka was down; the outage did not happen")
	}
	checkTopic(t, kopts, down.retried)
}

// stopKafka stops the local Kafka after a while, starts it again outage
// after that, and returns the largest backlog of s seen meanwhile. It makes sure
// Kafka is up when the test ends.
func stopKafka(t *testing.T, s *Spool, after, outage time.Duration) int64 {
	t.Helper()
	script, err := filepath.Abs("../../deploy/local/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	run := func(cmd string) {
		t.Helper()
		start := time.Now()
		out, err := exec.Command(script, cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", script, cmd, err, out)
		}
		t.Logf("kafka.sh %s took %v", cmd, time.Since(start).Round(100*time.Millisecond))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "up").CombinedOutput(); err != nil {
			t.Errorf("%s up: %v\n%s", script, err, out)
		}
	})
	// Sample the backlog from the stop until Kafka is up again.
	var maxBacklog atomic.Int64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	time.Sleep(after)
	downAt := time.Now()
	go func() {
		defer close(sampled)
		for {
			if b, _ := s.backlog.snapshot(); b > maxBacklog.Load() {
				maxBacklog.Store(b)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	run("down")
	time.Sleep(time.Until(downAt.Add(outage)))
	run("up")
	close(stopSampling)
	<-sampled
	t.Logf("Kafka was down for %v", time.Since(downAt).Round(100*time.Millisecond))
	return maxBacklog.Load()
}

// checkTopic consumes the topic and checks that it holds every batch,
// each key's in order, and duplicates only of retried batches.
func checkTopic(t *testing.T, opts kafka.Options, retried map[string]bool) {
	t.Helper()
	c, err := kafka.NewConsumer(opts)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer mustClose(t, c)
	next := map[string]int{}
	distinct, dups := 0, 0
	deadline := time.Now().Add(3 * time.Minute)
	for {
		wait := 30 * time.Second
		if distinct == kafkaBatches {
			wait = 3 * time.Second // late duplicates
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d batches in 3 minutes", distinct, kafkaBatches)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := c.Fetch(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			if distinct == kafkaBatches {
				break
			}
			t.Fatalf("consumed %d of %d batches; nothing more for %v", distinct, kafkaBatches, wait)
		}
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		key, rest, _ := strings.Cut(string(m.Value), "/")
		seqText, _, _ := strings.Cut(rest, "/")
		seq, err := strconv.Atoi(seqText)
		if err != nil || m.Key != key || string(kafkaValue(key, seq)) != string(m.Value) {
			t.Fatalf("message at partition %d offset %d: key %q, value %.40q: not a batch of this test", m.Partition, m.Position, m.Key, m.Value)
		}
		switch {
		case seq == next[key]:
			next[key]++
			distinct++
		case seq < next[key] && retried[string(m.Value)]:
			dups++
		case seq < next[key]:
			t.Errorf("key %s: batch %d arrived again after %d, but its forward never failed", key, seq, next[key]-1)
		default:
			t.Fatalf("key %s: batch %d arrived after %d; batches are missing or out of order", key, seq, next[key]-1)
		}
	}
	for k := range kafkaKeys {
		key := fmt.Sprintf("svc-%d", k)
		if next[key] != kafkaBatches/kafkaKeys {
			t.Errorf("key %s: %d batches; want %d", key, next[key], kafkaBatches/kafkaKeys)
		}
	}
	t.Logf("topic holds all %d batches in order per key, and %d duplicates (of %d retried batches)", distinct, dups, len(retried))
}
