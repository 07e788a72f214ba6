package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// EnsureTopic creates opts.Topic with opts.Partitions partitions,
// opts.ReplicationFactor replicas and max.message.bytes fitting
// opts.MaxMessageBytes, unless it exists. An existing topic is not changed;
// a warning is logged when it has fewer partitions than configured.
// It is idempotent and safe to call from several processes at once.
// NewProducer (on its first connection) and NewConsumer call it.
func EnsureTopic(ctx context.Context, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	return ensureTopic(ctx, opts, opts.Topic)
}

// ensureTopic is EnsureTopic for topic, with opts already defaulted.
func ensureTopic(ctx context.Context, opts Options, topic string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg := opts.saramaConfig()
	// sarama's admin calls take no context: bound their network timeouts by
	// the context's deadline instead.
	if deadline, ok := ctx.Deadline(); ok {
		left := max(time.Until(deadline), 100*time.Millisecond)
		cfg.Net.DialTimeout = min(cfg.Net.DialTimeout, left)
		cfg.Net.ReadTimeout = min(cfg.Net.ReadTimeout, left)
		cfg.Net.WriteTimeout = min(cfg.Net.WriteTimeout, left)
		cfg.Admin.Timeout = min(cfg.Admin.Timeout, left)
		cfg.Metadata.Retry.Max = 1
	}
	admin, err := sarama.NewClusterAdmin(opts.Brokers, cfg)
	if err != nil {
		return fmt.Errorf("cannot connect to Kafka brokers %s: %w", strings.Join(opts.Brokers, ","), err)
	}
	defer admin.Close()

	// Describe first: a client allowed to write but not to create topics
	// still works with a topic that exists.
	metas, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return fmt.Errorf("cannot describe Kafka topic %q: %w", topic, err)
	}
	if len(metas) == 1 && metas[0].Err == sarama.ErrNoError {
		if n := len(metas[0].Partitions); n < int(opts.Partitions) {
			opts.Logger.Warn("Kafka topic has fewer partitions than configured; it is left unchanged",
				"topic", topic, "partitions", n, "configured", opts.Partitions)
		}
		return nil
	}
	if len(metas) == 1 && metas[0].Err != sarama.ErrUnknownTopicOrPartition {
		return fmt.Errorf("cannot describe Kafka topic %q: %w", topic, metas[0].Err)
	}

	maxBytes := strconv.Itoa(opts.MaxMessageBytes + topicHeadroom)
	detail := &sarama.TopicDetail{
		NumPartitions:     opts.Partitions,
		ReplicationFactor: opts.ReplicationFactor,
		ConfigEntries:     map[string]*string{"max.message.bytes": &maxBytes},
	}
	err = admin.CreateTopic(topic, detail, false)
	switch {
	case err == nil:
		opts.Logger.Info("created Kafka topic", "topic", topic, "partitions", opts.Partitions,
			"replication_factor", opts.ReplicationFactor, "max_message_bytes", maxBytes)
		return nil
	case errors.Is(err, sarama.ErrTopicAlreadyExists):
		return nil // created by another process since we looked
	default:
		return fmt.Errorf("cannot create Kafka topic %q with %d partitions and replication factor %d: %w",
			topic, opts.Partitions, opts.ReplicationFactor, err)
	}
}
