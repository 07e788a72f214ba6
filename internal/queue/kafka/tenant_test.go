package kafka

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

func TestMessageTenant(t *testing.T) {
	h := func(kv ...string) []*sarama.RecordHeader {
		var out []*sarama.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, &sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return out
	}
	f := func(headers []*sarama.RecordHeader, want string, wantOK bool) {
		t.Helper()
		got, ok := messageTenant(headers)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("messageTenant(%v): got %q, %v; want %q, %v", headers, got, ok, want, wantOK)
		}
	}
	f(nil, auth.DefaultTenant, true)
	f(h("other", "x"), auth.DefaultTenant, true)
	f(h(HeaderTenant, "team-a"), "team-a", true)
	f(h("other", "x", HeaderTenant, "team-a", HeaderTenant, "team-a"), "team-a", true)
	f(h(HeaderTenant, ""), "", false)
	f(h(HeaderTenant, "../etc"), "", false)
	f(h(HeaderTenant, "team-a", HeaderTenant, "team-b"), "", false)
}

// TestPublishRefusesInvalidTenant: nothing is sent for a tenant that is
// not a tenant id (no Kafka needed: the check comes first).
func TestPublishRefusesInvalidTenant(t *testing.T) {
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"}
	p, err := NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, p)
	if err := p.Publish(auth.WithTenant(context.Background(), "a b"), "svc", []byte("x")); !errors.Is(err, queue.ErrInvalidTenant) {
		t.Errorf("Publish with tenant \"a b\": got %v; want queue.ErrInvalidTenant", err)
	}
	err = p.PublishBatch(context.Background(), []queue.Record{{Key: "svc"}, {Tenant: "../x", Key: "svc"}})
	if !errors.Is(err, queue.ErrInvalidTenant) {
		t.Errorf("PublishBatch with tenant \"../x\": got %v; want queue.ErrInvalidTenant", err)
	}
}

// produceRaw produces messages with the given headers with a plain sarama
// producer, as an earlier release or another client would.
func produceRaw(t *testing.T, opts Options, msgs ...*sarama.ProducerMessage) {
	t.Helper()
	o, _ := opts.withDefaults()
	sp, err := sarama.NewSyncProducer(o.Brokers, o.producerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, m := range msgs {
		m.Topic = o.Topic
	}
	if err := sp.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// TestTenantRoundTrip: every message comes back with its tenant: the
// context's (Publish), the record's or the context's (PublishBatch),
// default for a message without the header. Messages whose header is not
// a tenant id are not returned: they are in the dead-letter topic with
// their tenant header, reason and source, and the Commit after them
// covers them.
func TestTenantRoundTrip(t *testing.T) {
	opts := testOptions(t, func(o *Options) { o.Partitions = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := EnsureTopic(ctx, opts); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, opts)
	if err := p.Publish(ctx, "svc", []byte("default-ctx")); err != nil {
		t.Fatal(err)
	}
	a := auth.WithTenant(ctx, "team-a")
	if err := p.Publish(a, "svc", []byte("a-ctx")); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishBatch(a, []queue.Record{
		{Key: "svc", Value: []byte("a-batch")},
		{Tenant: "team-b", Key: "svc", Value: []byte("b-record")},
	}); err != nil {
		t.Fatal(err)
	}
	header := func(v string) []sarama.RecordHeader {
		return []sarama.RecordHeader{{Key: []byte(HeaderTenant), Value: []byte(v)}}
	}
	produceRaw(t, opts,
		&sarama.ProducerMessage{Key: sarama.StringEncoder("svc"), Value: sarama.StringEncoder("no-header")},
		&sarama.ProducerMessage{Key: sarama.StringEncoder("svc"), Value: sarama.StringEncoder("bad-1"), Headers: header("../etc")},
		&sarama.ProducerMessage{Key: sarama.StringEncoder("svc"), Value: sarama.StringEncoder("bad-2"), Headers: append(header("team-a"), header("team-b")...)},
	)
	if err := p.Publish(auth.WithTenant(ctx, "team-c"), "svc", []byte("c-after")); err != nil {
		t.Fatal(err)
	}

	c := mustConsumer(t, opts)
	msgs := mustFetchN(t, c, 6)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Tenant+"/"+string(m.Value))
	}
	want := []string{"default/default-ctx", "team-a/a-ctx", "team-a/a-batch", "team-b/b-record", "default/no-header", "team-c/c-after"}
	if !slices.Equal(got, want) {
		t.Fatalf("fetched %q; want %q", got, want)
	}
	if err := c.Commit(ctx, msgs[len(msgs)-1]); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(c.invalidTenant); got != 2 {
		t.Errorf("invalid tenant messages: got %v; want 2", got)
	}

	dlq := opts
	dlq.Topic = opts.Topic + DefaultDeadLetterSuffix
	dead := readAll(t, dlq, 2)
	slices.SortFunc(dead, func(x, y *sarama.ConsumerMessage) int { return int(x.Offset - y.Offset) })
	wantHeaders := []map[string]string{
		{HeaderReason: `header vigil.tenant: "../etc" is not a tenant id`, HeaderSourceTopic: opts.Topic,
			HeaderSourcePartition: "0", HeaderSourceOffset: "5", HeaderTenant: "../etc"},
		{HeaderReason: `header vigil.tenant: "team-a,team-b" is not a tenant id`, HeaderSourceTopic: opts.Topic,
			HeaderSourcePartition: "0", HeaderSourceOffset: "6", HeaderTenant: "team-a,team-b"},
	}
	for i, m := range dead {
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		if string(m.Value) != []string{"bad-1", "bad-2"}[i] || !maps.Equal(h, wantHeaders[i]) {
			t.Errorf("dead letter %d: value %q, headers %v; want bad-%d, %v", i, m.Value, h, i+1, wantHeaders[i])
		}
	}

	// Committed past the invalid ones: a new member of the group gets
	// the next message, not them again.
	mustClose(t, c)
	if err := p.Publish(a, "svc", []byte("a-last")); err != nil {
		t.Fatal(err)
	}
	c2 := mustConsumer(t, opts)
	if m := mustFetch(t, c2); m.Tenant != "team-a" || string(m.Value) != "a-last" {
		t.Fatalf("after the commit: fetched %s/%s; want team-a/a-last", m.Tenant, m.Value)
	}
}
