package kafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama registers go-metrics meters; go-metrics starts one
		// process-wide ticker goroutine for them on first use and never
		// stops it (sarama's own tests ignore it the same way).
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// testBrokers returns the brokers of the Kafka in VIGIL_TEST_KAFKA. It skips
// the test when the variable is unset, or fails it when
// VIGIL_REQUIRE_SERVICES=1.
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

// testOptions returns options for a topic and group unique to this test
// run, changed by mods, and deletes the topic when the test ends.
func testOptions(tb testing.TB, mods ...func(*Options)) Options {
	tb.Helper()
	opts := DefaultOptions()
	opts.Brokers = testBrokers(tb)
	name := strings.Map(func(r rune) rune {
		if r == '/' {
			return '.'
		}
		if r < 128 && validTopic.MatchString(string(r)) {
			return r
		}
		return '_'
	}, tb.Name())
	name = fmt.Sprintf("vigil-test.%s.%d", name, time.Now().UnixNano())
	opts.Topic = name
	opts.GroupID = name
	opts.PublishTimeout = 30 * time.Second
	for _, mod := range mods {
		mod(&opts)
	}
	tb.Cleanup(func() { deleteTopics(tb, opts, opts.Topic, opts.Topic+DefaultDeadLetterSuffix) })
	return opts
}

func deleteTopics(tb testing.TB, opts Options, topics ...string) {
	admin := mustAdmin(tb, opts)
	defer admin.Close()
	for _, topic := range topics {
		if err := admin.DeleteTopic(topic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			tb.Logf("cannot delete test topic %s: %v", topic, err)
		}
	}
}

func mustAdmin(tb testing.TB, opts Options) sarama.ClusterAdmin {
	tb.Helper()
	o, err := opts.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(o.Brokers, o.saramaConfig())
	if err != nil {
		tb.Fatalf("NewClusterAdmin: %v", err)
	}
	return admin
}

func mustProducer(tb testing.TB, opts Options) *Producer {
	tb.Helper()
	p, err := NewProducer(opts)
	if err != nil {
		tb.Fatalf("NewProducer: %v", err)
	}
	tb.Cleanup(func() { mustClose(tb, p) })
	return p
}

func mustConsumer(tb testing.TB, opts Options) *Consumer {
	tb.Helper()
	c, err := NewConsumer(opts)
	if err != nil {
		tb.Fatalf("NewConsumer: %v", err)
	}
	tb.Cleanup(func() { mustClose(tb, c) })
	return c
}

func mustClose(tb testing.TB, c interface{ Close() error }) {
	tb.Helper()
	if err := c.Close(); err != nil {
		tb.Errorf("Close: %v", err)
	}
}

func mustPublish(tb testing.TB, p queue.Producer, key, value string) {
	tb.Helper()
	if err := p.Publish(context.Background(), key, []byte(value)); err != nil {
		tb.Fatalf("Publish(%q, %q): %v", key, value, err)
	}
}

// fetchTimeout bounds a Fetch that should find a message: joining a group
// takes a few seconds.
const fetchTimeout = 30 * time.Second

func mustFetch(tb testing.TB, c queue.Consumer) queue.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	m, err := c.Fetch(ctx)
	if err != nil {
		tb.Fatalf("Fetch: %v", err)
	}
	return m
}

func mustFetchN(tb testing.TB, c queue.Consumer, n int) []queue.Message {
	tb.Helper()
	var msgs []queue.Message
	for range n {
		msgs = append(msgs, mustFetch(tb, c))
	}
	return msgs
}

// expectNothing checks that c has no message for a while.
func expectNothing(tb testing.TB, c queue.Consumer, wait time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if m, err := c.Fetch(ctx); err == nil {
		tb.Fatalf("Fetch: got %s=%s at partition %d offset %d; want nothing", m.Key, m.Value, m.Partition, m.Position)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		tb.Fatalf("Fetch: %v; want %v", err, context.DeadlineExceeded)
	}
}

func values(msgs []queue.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Value))
	}
	return out
}
