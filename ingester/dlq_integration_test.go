package ingester

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// requireEnv returns the value of name, skipping the test when it is unset
// or failing it when VIGIL_REQUIRE_SERVICES=1.
func requireEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is not set and VIGIL_REQUIRE_SERVICES=1 (make test starts the services)", name)
		}
		t.Skipf("%s is not set", name)
	}
	return v
}

// TestRejectedRecordGoesToDeadLetterTopic has the ingester write a batch to
// a real Elasticsearch where one record cannot be indexed, and checks that
// record lands on the real Kafka dead-letter topic with Elasticsearch's
// reason while the rest of its batch is indexed and the batch committed.
func TestRejectedRecordGoesToDeadLetterTopic(t *testing.T) {
	brokers := requireEnv(t, "VIGIL_TEST_KAFKA")
	esURL := requireEnv(t, "VIGIL_TEST_ES")
	run := fmt.Sprintf("dlqtest%d", time.Now().UnixNano()%1e9)
	ko := kafka.DefaultOptions()
	ko.Brokers = strings.Split(brokers, ",")
	ko.Topic = "vigil.logs." + run
	dlq, err := kafka.NewDeadLetterProducer(ko, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()

	eo := esstore.DefaultOptions()
	eo.URLs = []string{esURL}
	eo.IndexPrefix = run + "-"
	eo.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := esstore.Open(ctx, eo)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	now := time.Now().UnixNano()
	var recs []model.LogRecord
	for i := 0; i < 20; i++ {
		recs = append(recs, model.LogRecord{ID: model.RecordID{byte(i + 1), 42}, Timestamp: now + int64(i), Service: "pay", Message: fmt.Sprintf("line %d", i), Grade: 1})
	}
	// A trace id longer than Lucene's 32766-byte term limit: Elasticsearch
	// refuses the document. (The collector's decoders never produce one; a
	// foreign producer writing to the topic could.)
	recs[7].TraceID = strings.Repeat("f", 40000)
	b, err := otlplogs.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	ingestOne(t, b, func(q queue.Consumer) *Ingester { return New(quietOptions(), q, store, dlq) },
		func(in *Ingester) bool { return testutil.ToFloat64(in.m.batches) == 1 })
	if err := store.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := store.Count(ctx, now-1e9, now+1e9, nil)
	if err != nil || n != 19 {
		t.Fatalf("indexed: got %d, %v; want the other 19", n, err)
	}

	// The rejected record is on the dead-letter topic with the reason.
	found, reason := readDeadLetters(t, ko.Brokers, ko.Topic+kafka.DefaultDeadLetterSuffix)
	got, err := otlplogs.Unmarshal(nil, found[0].Value)
	if err != nil || len(got) != 1 || got[0].Message != "line 7" || string(found[0].Key) != "pay" || !strings.Contains(reason, "immense term") {
		t.Errorf("dead-lettered: %d records (%v), key %q, reason %q; want line 7 under its service with a reason about the immense term",
			len(got), err, found[0].Key, reason)
	} else if got[0].TraceID != recs[7].TraceID {
		t.Errorf("dead-lettered record: trace id of %d bytes; want the record as it was", len(got[0].TraceID))
	}
}

// quietOptions returns testOptions without logs.
func quietOptions() Options {
	o := testOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// readDeadLetters returns the messages of a dead-letter topic, failing
// unless there is exactly one, and the reason header of the first.
func readDeadLetters(t *testing.T, brokers []string, topic string) ([]*sarama.ConsumerMessage, string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var found []*sarama.ConsumerMessage
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-pc.Messages():
			found = append(found, m)
		case <-time.After(3 * time.Second):
		}
		pc.Close()
	}
	if len(found) != 1 {
		t.Fatalf("dead-letter topic %s: got %d messages; want 1", topic, len(found))
	}
	var reason string
	for _, h := range found[0].Headers {
		if string(h.Key) == kafka.HeaderReason {
			reason = string(h.Value)
		}
	}
	return found, reason
}

// TestRejectedSpanGoesToDeadLetterTopic is the same for spans: a span
// Elasticsearch refuses (more nested tags than the index allows) lands on
// the span dead-letter topic with the reason, the others are stored and the
// batch committed.
func TestRejectedSpanGoesToDeadLetterTopic(t *testing.T) {
	brokers := requireEnv(t, "VIGIL_TEST_KAFKA")
	esURL := requireEnv(t, "VIGIL_TEST_ES")
	run := fmt.Sprintf("dlqspans%d", time.Now().UnixNano()%1e9)
	ko := kafka.DefaultOptions()
	ko.Brokers = strings.Split(brokers, ",")
	ko.Topic = "vigil.spans." + run
	dlq, err := kafka.NewDeadLetterProducer(ko, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()

	eo := esspanstore.DefaultOptions()
	eo.URLs = []string{esURL}
	eo.IndexPrefix = run
	eo.Replicas = 0
	eo.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := esspanstore.Open(ctx, eo)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	var spans []model.Span
	for i := 0; i < 5; i++ {
		spans = append(spans, model.Span{TraceID: model.TraceID{15: 9}, SpanID: model.SpanID{7: byte(i + 1)}, Name: "op",
			Service: "pay", StartTime: time.Now().UnixNano(), Duration: 1000})
	}
	for i := 0; i < 10001; i++ {
		spans[2].Attributes = append(spans[2].Attributes, model.TypedAttr{Key: fmt.Sprint("k", i), Str: "v"})
	}
	b, err := otlptraces.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	ingestOne(t, b, func(q queue.Consumer) *SpanIngester { return NewSpanIngester(quietOptions(), q, store, dlq) },
		func(in *SpanIngester) bool { return testutil.ToFloat64(in.written) == float64(len(spans)) })
	found, reason := readDeadLetters(t, ko.Brokers, ko.Topic+kafka.DefaultDeadLetterSuffix)
	got, err := otlptraces.Unmarshal(nil, found[0].Value)
	if err != nil || len(got) != 1 || got[0].SpanID != spans[2].SpanID || !strings.Contains(reason, "nested") {
		t.Errorf("dead-lettered: %d spans (%v), reason %q; want span 3 with a reason about nested documents", len(got), err, reason)
	}
	if err := store.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := store.GetTrace(ctx, spans[0].TraceID)
	if err != nil || len(stored) != 4 {
		t.Errorf("stored: %d spans (%v); want the other 4", len(stored), err)
	}
}
