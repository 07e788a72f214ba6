package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

// Integration tests of producing: they need the Kafka in VIGIL_TEST_KAFKA.

func TestDeadLetterHeaders(t *testing.T) {
	opts := testOptions(t)
	d, err := NewDeadLetterProducer(opts, "")
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, d)
	ctx := context.Background()
	if err := d.DeadLetter(auth.WithTenant(ctx, "team-b"), "svc", []byte("not protobuf"), "cannot decode batch: proto: cannot parse invalid wire-format data"); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	src := queue.Message{Tenant: "team-a", Key: "svc-2", Value: []byte("also bad"), Partition: 2, Position: 41}
	if err := d.DeadLetterMessage(ctx, src, "too many attributes"); err != nil {
		t.Fatalf("DeadLetterMessage: %v", err)
	}

	dlq := opts
	dlq.Topic = opts.Topic + DefaultDeadLetterSuffix
	msgs := readAll(t, dlq, 2)
	want := []map[string]string{
		{HeaderReason: "cannot decode batch: proto: cannot parse invalid wire-format data", HeaderSourceTopic: opts.Topic, HeaderTenant: "team-b"},
		{HeaderReason: "too many attributes", HeaderSourceTopic: opts.Topic, HeaderSourcePartition: "2", HeaderSourceOffset: "41", HeaderTenant: "team-a"},
	}
	sort.Slice(msgs, func(i, j int) bool { return string(msgs[i].Key) < string(msgs[j].Key) })
	for i, m := range msgs {
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		if !maps.Equal(h, want[i]) {
			t.Errorf("message %d (%s=%s) headers: got %v; want %v", i, m.Key, m.Value, h, want[i])
		}
	}
}

// readAll reads n messages of opts.Topic with a plain sarama consumer, to
// see what Vigil's Consumer does not expose (headers).
func readAll(t *testing.T, opts Options, n int) []*sarama.ConsumerMessage {
	t.Helper()
	o, _ := opts.withDefaults()
	consumer, err := sarama.NewConsumer(o.Brokers, o.consumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := consumer.Partitions(o.Topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *sarama.ConsumerMessage)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	for _, part := range parts {
		pc, err := consumer.ConsumePartition(o.Topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					select {
					case out <- m:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		})
	}
	var msgs []*sarama.ConsumerMessage
	timeout := time.After(fetchTimeout)
	for len(msgs) < n {
		select {
		case m := <-out:
			msgs = append(msgs, m)
		case <-timeout:
			t.Fatalf("got %d messages of %s; want %d", len(msgs), o.Topic, n)
		}
	}
	return msgs
}

// TestCompressionRoundTrip publishes with every codec into one topic and
// checks every batch comes back intact.
func TestCompressionRoundTrip(t *testing.T) {
	opts := testOptions(t)
	want := map[string][]byte{}
	for codec := range compressionCodecs {
		o := opts
		o.Compression = codec
		p := mustProducer(t, o)
		v := logLines(rand.New(rand.NewPCG(1, uint64(len(codec)))), 256<<10)
		mustPublish(t, p, codec, string(v))
		want[codec] = v
	}
	c := mustConsumer(t, opts)
	for range want {
		m := mustFetch(t, c)
		if !bytes.Equal(m.Value, want[m.Key]) {
			t.Errorf("compression %s: got %d bytes, not the %d published", m.Key, len(m.Value), len(want[m.Key]))
		}
	}
}

// TestPublishTooLargeForTopic: a topic whose max.message.bytes is below the
// batch (created by someone else) makes Publish fail with ErrTooLarge.
func TestPublishTooLargeForTopic(t *testing.T) {
	opts := testOptions(t)
	admin := mustAdmin(t, opts)
	limit := "2048"
	err := admin.CreateTopic(opts.Topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &limit}}, false)
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, opts)
	value := make([]byte, 16<<10)
	for i := range value {
		value[i] = byte(rand.N(256)) // incompressible
	}
	err = p.Publish(context.Background(), "svc", value)
	if !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("Publish of 16 KiB to a topic with max.message.bytes 2048: %v; want %v", err, queue.ErrTooLarge)
	}
	mustPublish(t, p, "svc", "small batches still go through")
}

// logLines returns about size bytes of log-like JSON lines: as
// compressible as real batches, not more.
func logLines(r *rand.Rand, size int) []byte {
	levels := []string{"info", "info", "info", "warn", "error", "debug"}
	var b bytes.Buffer
	for b.Len() < size {
		fmt.Fprintf(&b, `{"ts":"2025-06-01T12:%02d:%02d.%06dZ","level":%q,"service":"checkout-%d","trace_id":"%016x%016x","msg":"request served","status":%d,"duration_ms":%d,"user":%d}`+"\n",
			r.IntN(60), r.IntN(60), r.IntN(1e6), levels[r.IntN(len(levels))], r.IntN(8),
			r.Uint64(), r.Uint64(), 200+r.IntN(4)*100, r.IntN(2000), r.IntN(1e6))
	}
	return b.Bytes()[:size]
}

// TestPublishBatch publishes batches of several keys in PublishBatch calls
// and checks that each key's batches arrive once each, in order, and that
// the produced-messages counter counts every one.
func TestPublishBatch(t *testing.T) {
	opts := testOptions(t)
	p := mustProducer(t, opts)
	const keys, calls, perCall = 5, 4, 50
	for call := range calls {
		var recs []queue.Record
		for i := range perCall {
			key := fmt.Sprintf("trace-%d", i%keys)
			recs = append(recs, queue.Record{Key: key, Value: fmt.Appendf(nil, "%s/%03d", key, call*perCall/keys+i/keys)})
		}
		if err := p.PublishBatch(context.Background(), recs); err != nil {
			t.Fatalf("PublishBatch %d: %v", call, err)
		}
	}
	if got := counterValue(t, p.producedMessages); got != calls*perCall {
		t.Errorf("produced messages: got %v; want %d", got, calls*perCall)
	}
	c := mustConsumer(t, opts)
	byKey := map[string][]string{}
	for _, m := range mustFetchN(t, c, calls*perCall) {
		byKey[m.Key] = append(byKey[m.Key], string(m.Value))
	}
	for k := range keys {
		key := fmt.Sprintf("trace-%d", k)
		var want []string
		for i := range calls * perCall / keys {
			want = append(want, fmt.Sprintf("%s/%03d", key, i))
		}
		if !slices.Equal(byKey[key], want) {
			t.Errorf("key %s: got %q; want %q", key, byKey[key], want)
		}
	}
	expectNothing(t, c, time.Second)
}

// TestPublishMaxMessageBytes: a message of exactly MaxMessageBytes, key
// and value, is accepted, incompressible, by sarama and the broker, also
// with the longest tenant id in its header.
func TestPublishMaxMessageBytes(t *testing.T) {
	opts := testOptions(t, func(o *Options) { o.MaxMessageBytes = 64 << 10; o.Compression = "none" })
	p := mustProducer(t, opts)
	value := make([]byte, p.MaxMessageBytes()-len("svc"))
	for i := range value {
		value[i] = byte(rand.N(256))
	}
	longest := auth.WithTenant(context.Background(), strings.Repeat("t", 128))
	if err := p.Publish(longest, "svc", value); err != nil {
		t.Fatalf("Publish of MaxMessageBytes (%d) bytes: %v", p.MaxMessageBytes(), err)
	}
	if err := p.Publish(context.Background(), "svc", make([]byte, opts.MaxMessageBytes)); !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("Publish beyond Options.MaxMessageBytes: %v; want %v", err, queue.ErrTooLarge)
	}
}
