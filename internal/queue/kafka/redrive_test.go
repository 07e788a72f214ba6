package kafka

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/vigilhq/vigil/internal/auth"
)

// TestRedrive publishes batches, then re-drives the window they were
// appended in: every batch appears a second time, with its key and
// tenant, and batches outside the window do not.
func TestRedrive(t *testing.T) {
	opts := testOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := EnsureTopic(ctx, opts); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	publish := func(prefix string, n int) {
		ctx := ctx
		if prefix == "gap" {
			ctx = auth.WithTenant(ctx, "team-a")
		}
		for i := 0; i < n; i++ {
			if err := p.Publish(ctx, fmt.Sprintf("svc-%d", i%3), []byte(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("before", 5)
	time.Sleep(1500 * time.Millisecond)
	from := time.Now()
	publish("gap", 12)
	to := time.Now().Add(time.Second)
	time.Sleep(1500 * time.Millisecond)
	publish("after", 5)

	n, err := Redrive(ctx, opts, from, to, nil)
	if err != nil || n != 12 {
		t.Fatalf("Redrive: got %d batches, %v; want the 12 of the window", n, err)
	}
	counts := map[string]int{}
	keys := map[string]string{}
	tenants := map[string][]string{}
	c, err := sarama.NewConsumer(opts.Brokers, opts.consumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, _ := c.Partitions(opts.Topic)
	for _, part := range parts {
		pc, err := c.ConsumePartition(opts.Topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
	read:
		for {
			select {
			case m := <-pc.Messages():
				counts[string(m.Value)]++
				keys[string(m.Value)] = string(m.Key)
				tenant, _ := messageTenant(m.Headers)
				tenants[string(m.Value)] = append(tenants[string(m.Value)], tenant)
			case <-time.After(2 * time.Second):
				break read
			}
		}
		pc.Close()
	}
	for i := 0; i < 12; i++ {
		v := fmt.Sprintf("gap-%d", i)
		if counts[v] != 2 || keys[v] != fmt.Sprintf("svc-%d", i%3) {
			t.Errorf("%s: seen %d times with key %q; want twice with key svc-%d", v, counts[v], keys[v], i%3)
		}
		if !slices.Equal(tenants[v], []string{"team-a", "team-a"}) {
			t.Errorf("%s: seen with tenants %q; want team-a both times", v, tenants[v])
		}
	}
	for _, prefix := range []string{"before", "after"} {
		for i := 0; i < 5; i++ {
			if v := fmt.Sprintf("%s-%d", prefix, i); counts[v] != 1 {
				t.Errorf("%s outside the window: seen %d times; want once", v, counts[v])
			}
		}
	}
}
