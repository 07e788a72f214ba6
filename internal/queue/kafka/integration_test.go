package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilhq/vigil/internal/queue"
)

// Integration tests: they need the Kafka in VIGIL_TEST_KAFKA (testBrokers).

func TestEnsureTopicIdempotent(t *testing.T) {
	opts := testOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs { // concurrent first calls race to create it
		wg.Go(func() { errs[i] = EnsureTopic(ctx, opts) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent EnsureTopic: %v", err)
	}
	if err := EnsureTopic(ctx, opts); err != nil {
		t.Fatalf("EnsureTopic of an existing topic: %v", err)
	}
	admin := mustAdmin(t, opts)
	defer admin.Close()
	metas, err := admin.DescribeTopics([]string{opts.Topic})
	if err != nil || len(metas) != 1 || metas[0].Err != sarama.ErrNoError {
		t.Fatalf("DescribeTopics: %v %v", metas, err)
	}
	if got := len(metas[0].Partitions); got != int(opts.Partitions) {
		t.Errorf("partitions: got %d; want %d", got, opts.Partitions)
	}
	//lint:ignore SA1019 one resource is all the test reads
	entries, err := admin.DescribeConfig(sarama.ConfigResource{
		Type: sarama.TopicResource, Name: opts.Topic, ConfigNames: []string{"max.message.bytes"},
	})
	if err != nil || len(entries) != 1 {
		t.Fatalf("DescribeConfig: %v %v", entries, err)
	}
	if got, want := entries[0].Value, strconv.Itoa(opts.MaxMessageBytes+topicHeadroom); got != want {
		t.Errorf("max.message.bytes: got %s; want %s", got, want)
	}
}

// TestKeyOrder publishes batches of several keys concurrently (one
// goroutine per key) and checks that one consumer gets them all, each key's
// in publish order, from several partitions.
func TestKeyOrder(t *testing.T) {
	opts := testOptions(t)
	p := mustProducer(t, opts)
	const keys, perKey = 6, 20
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			for i := range perKey {
				mustPublish(t, p, fmt.Sprintf("svc-%d", k), fmt.Sprintf("svc-%d/%03d", k, i))
			}
		})
	}
	wg.Wait()

	c := mustConsumer(t, opts)
	first := mustFetch(t, c)
	if lag := gaugeValue(t, c, first.Partition); lag <= 0 {
		t.Errorf("lag of partition %d after its first message: got %v; want the messages left in it", first.Partition, lag)
	}
	msgs := append([]queue.Message{first}, mustFetchN(t, c, keys*perKey-1)...)
	byKey := map[string][]string{}
	partitions := map[int32]bool{}
	for _, m := range msgs {
		byKey[m.Key] = append(byKey[m.Key], string(m.Value))
		partitions[m.Partition] = true
	}
	for k := range keys {
		key := fmt.Sprintf("svc-%d", k)
		var want []string
		for i := range perKey {
			want = append(want, fmt.Sprintf("%s/%03d", key, i))
		}
		if !slices.Equal(byKey[key], want) {
			t.Errorf("key %s: got %q; want %q", key, byKey[key], want)
		}
	}
	if len(partitions) < 2 {
		t.Errorf("messages came from partitions %v; want several of %d", slices.Collect(maps.Keys(partitions)), opts.Partitions)
	}
	expectNothing(t, c, time.Second)
	for part := range partitions {
		if lag := gaugeValue(t, c, part); lag != 0 {
			t.Errorf("lag of partition %d after every message was fetched: got %v; want 0", part, lag)
		}
	}
}

// gaugeValue returns the lag gauge of partition part of c's topic.
func gaugeValue(t *testing.T, c *Consumer, part int32) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.m.lag.WithLabelValues(c.opts.Topic, strconv.Itoa(int(part))).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestCommitThenNewConsumer: after a commit of the last fetched message, a
// new member of the group gets only what was published afterwards.
func TestCommitThenNewConsumer(t *testing.T) {
	opts := testOptions(t)
	p := mustProducer(t, opts)
	for i := range 12 {
		mustPublish(t, p, fmt.Sprintf("svc-%d", i%4), fmt.Sprintf("old-%d", i))
	}
	c1, err := NewConsumer(opts)
	if err != nil {
		t.Fatal(err)
	}
	msgs := mustFetchN(t, c1, 12)
	if err := c1.Commit(context.Background(), msgs[len(msgs)-1]); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := counterValue(t, c1.commits); got != 1 {
		t.Errorf("commits counter: got %v; want 1", got)
	}
	mustClose(t, c1)
	mustPublish(t, p, "svc-0", "new")

	c2 := mustConsumer(t, opts)
	if m := mustFetch(t, c2); string(m.Value) != "new" {
		t.Fatalf("first message for the new consumer: got %q; want %q", m.Value, "new")
	}
	expectNothing(t, c2, 2*time.Second)
}

// TestUncommittedRedelivered: messages fetched but not committed before
// Close are delivered again to the next member (at-least-once).
func TestUncommittedRedelivered(t *testing.T) {
	opts := testOptions(t)
	p := mustProducer(t, opts)
	var want []string
	for i := range 9 {
		v := fmt.Sprintf("batch-%d", i)
		mustPublish(t, p, fmt.Sprintf("svc-%d", i%3), v)
		want = append(want, v)
	}
	c1, err := NewConsumer(opts)
	if err != nil {
		t.Fatal(err)
	}
	first := values(mustFetchN(t, c1, 9))
	mustClose(t, c1)
	if err := c1.Commit(context.Background(), queue.Message{}); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Commit after Close: %v; want %v", err, queue.ErrClosed)
	}

	c2 := mustConsumer(t, opts)
	again := values(mustFetchN(t, c2, 9))
	sort.Strings(first)
	sort.Strings(again)
	if !slices.Equal(first, want) || !slices.Equal(again, want) {
		t.Fatalf("first consumer got %q, second got %q; want both %q", first, again, want)
	}
}

// TestCommitSpansPartitions commits a message in the middle of a fetch
// sequence spanning partitions, checks the offsets the group holds, and
// that the next member gets exactly the messages fetched after it.
func TestCommitSpansPartitions(t *testing.T) {
	opts := testOptions(t)
	p := mustProducer(t, opts)
	for i := range 30 {
		mustPublish(t, p, fmt.Sprintf("svc-%d", i%6), fmt.Sprintf("batch-%02d", i))
	}
	c1, err := NewConsumer(opts)
	if err != nil {
		t.Fatal(err)
	}
	msgs := mustFetchN(t, c1, 30)
	// Commit the message after which at least two partitions were seen,
	// with messages left after it.
	cut := -1
	seen := map[int32]bool{}
	for i, m := range msgs[:len(msgs)-3] {
		seen[m.Partition] = true
		if len(seen) >= 2 && i >= 10 {
			cut = i
			break
		}
	}
	if cut < 0 {
		t.Fatalf("fetched messages from partitions %v only; want several", seen)
	}
	if err := c1.Commit(context.Background(), msgs[cut]); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	wantOffsets := map[int32]int64{}
	for _, m := range msgs[:cut+1] {
		wantOffsets[m.Partition] = max(wantOffsets[m.Partition], m.Position+1)
	}
	admin := mustAdmin(t, opts)
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(opts.GroupID, map[string][]int32{opts.Topic: {0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	for part := range int32(3) {
		want, ok := wantOffsets[part]
		if !ok {
			want = -1 // nothing committed
		}
		if b := resp.GetBlock(opts.Topic, part); b == nil || b.Offset != want {
			t.Errorf("committed offset of partition %d: got %+v; want %d", part, b, want)
		}
	}
	mustClose(t, c1)

	c2 := mustConsumer(t, opts)
	rest := values(msgs[cut+1:])
	got := values(mustFetchN(t, c2, len(rest)))
	sort.Strings(rest)
	sort.Strings(got)
	if !slices.Equal(got, rest) {
		t.Fatalf("after a commit of message %d of 30: next member got %q; want %q", cut+1, got, rest)
	}
	expectNothing(t, c2, time.Second)
}

// TestRebalance: a second member joins while the first holds fetched,
// uncommitted messages. The first member's Commit of revoked partitions
// returns nil without committing, and between them the two members get
// every message.
func TestRebalance(t *testing.T) {
	opts := testOptions(t)
	p := mustProducer(t, opts)
	const n = 30
	for i := range n {
		mustPublish(t, p, fmt.Sprintf("svc-%d", i%6), fmt.Sprintf("batch-%02d", i))
	}
	a := mustConsumer(t, opts)
	held := mustFetch(t, a)
	a.mu.Lock()
	sessA := a.session
	a.mu.Unlock()

	b := mustConsumer(t, opts)
	// Wait for a's new session: the rebalance revoked held's claim.
	deadline := time.Now().Add(time.Minute)
	for {
		a.mu.Lock()
		s := a.session
		a.mu.Unlock()
		if s != nil && s != sessA {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no rebalance within a minute of a second member joining")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := a.Commit(context.Background(), held); err != nil {
		t.Fatalf("Commit of a revoked partition: %v; want nil", err)
	}
	if got := counterValue(t, a.revoked); got != 1 {
		t.Errorf("revoked partitions counter: got %v; want 1", got)
	}

	// Drain with both members, committing as an ingester would.
	var mu sync.Mutex
	got := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range []*Consumer{a, b} {
		wg.Go(func() {
			for ctx.Err() == nil {
				fctx, fcancel := context.WithTimeout(ctx, time.Second)
				m, err := c.Fetch(fctx)
				fcancel()
				if err != nil {
					continue
				}
				if err := c.Commit(ctx, m); err != nil {
					t.Errorf("Commit: %v", err)
				}
				mu.Lock()
				got[string(m.Value)]++
				if len(got) == n {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("two members got %d distinct batches of %d: %v", len(got), n, got)
	}
	if got[string(held.Value)] < 1 {
		t.Errorf("the batch held across the rebalance (%s) was not redelivered", held.Value)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
