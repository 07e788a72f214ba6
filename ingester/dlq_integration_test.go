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

	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
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

// TestRejectedRecordGoesToDeadLetterTopic writes a batch to a real
// Elasticsearch where one record cannot be indexed, and checks that record
// lands on the real Kafka dead-letter topic with Elasticsearch's reason
// while the rest of its batch is indexed.
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

	var ing *Ingester
	eo := esstore.DefaultOptions()
	eo.URLs = []string{esURL}
	eo.IndexPrefix = run + "-"
	eo.Logger = slog.New(slog.DiscardHandler)
	eo.Rejected = func(ctx context.Context, rec model.LogRecord, reason string) error {
		return ing.Reject(ctx, rec, reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := esstore.Open(ctx, eo)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ing = New(Options{Logger: slog.New(slog.DiscardHandler)}, nil, store, dlq)

	now := time.Now().UnixNano()
	var recs []model.LogRecord
	for i := 0; i < 20; i++ {
		recs = append(recs, model.LogRecord{ID: model.RecordID{byte(i + 1), 42}, Timestamp: now + int64(i), Service: "pay", Message: fmt.Sprintf("line %d", i), Grade: 1})
	}
	// A grade outside the byte range of vigil.grade: Elasticsearch refuses
	// the document. (The collector's decoders never produce one; a foreign
	// producer writing to the topic could.)
	recs[7].Grade = 1000
	if err := store.Write(ctx, recs); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := store.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := store.Count(ctx, now-1e9, now+1e9, nil)
	if err != nil || n != 19 {
		t.Fatalf("indexed: got %d, %v; want the other 19", n, err)
	}

	// The rejected record is on the dead-letter topic with the reason.
	cfg := sarama.NewConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	c, err := sarama.NewConsumer(ko.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dlqTopic := ko.Topic + kafka.DefaultDeadLetterSuffix
	parts, err := c.Partitions(dlqTopic)
	if err != nil {
		t.Fatal(err)
	}
	var found []*sarama.ConsumerMessage
	for _, p := range parts {
		pc, err := c.ConsumePartition(dlqTopic, p, sarama.OffsetOldest)
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
		t.Fatalf("dead-letter topic: got %d messages; want 1", len(found))
	}
	var reason string
	for _, h := range found[0].Headers {
		if string(h.Key) == kafka.HeaderReason {
			reason = string(h.Value)
		}
	}
	got, err := otlplogs.Unmarshal(nil, found[0].Value)
	if err != nil || len(got) != 1 || got[0].Message != "line 7" || !strings.Contains(reason, "vigil.grade") {
		t.Errorf("dead-lettered: %+v (%v), reason %q; want line 7 with a reason naming vigil.grade", got, err, reason)
	}
}
