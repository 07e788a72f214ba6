package kafka

import (
	"context"
	"strconv"

	"github.com/IBM/sarama"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

// Headers of dead-lettered messages.
const (
	HeaderReason          = "vigil.reason"
	HeaderSourceTopic     = "vigil.source.topic"
	HeaderSourcePartition = "vigil.source.partition"
	HeaderSourceOffset    = "vigil.source.offset"
)

// DefaultDeadLetterSuffix names the dead-letter topic of a topic T: T + ".dlq".
const DefaultDeadLetterSuffix = ".dlq"

// DeadLetterProducer keeps batches the ingester cannot process in a
// dead-letter topic, with the reason in a header. It implements the
// ingester's DeadLetter interface.
type DeadLetterProducer struct {
	p      *Producer
	source string // the topic the batches were consumed from
}

// NewDeadLetterProducer returns a producer to topic (opts.Topic + ".dlq"
// when empty) for batches consumed from opts.Topic. Like NewProducer, it
// connects and creates the topic (with opts.Partitions) on first use.
func NewDeadLetterProducer(opts Options, topic string) (*DeadLetterProducer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if topic == "" {
		topic = opts.Topic + DefaultDeadLetterSuffix
	}
	p, err := newProducer(opts, topic)
	if err != nil {
		return nil, err
	}
	return &DeadLetterProducer{p: p, source: opts.Topic}, nil
}

// DeadLetter produces value with key to the dead-letter topic, with headers
// vigil.reason, vigil.source.topic and vigil.tenant (the tenant of ctx,
// auth.Tenant: the ingester's context carries the batch's). It returns
// once Kafka acknowledged it, like Producer.Publish.
func (d *DeadLetterProducer) DeadLetter(ctx context.Context, key string, value []byte, reason string) error {
	return d.p.produce(ctx, []*sarama.ProducerMessage{d.p.message(key, value, []sarama.RecordHeader{
		{Key: []byte(HeaderReason), Value: []byte(reason)},
		{Key: []byte(HeaderSourceTopic), Value: []byte(d.source)},
		{Key: []byte(HeaderTenant), Value: []byte(auth.Tenant(ctx))},
	})})
}

// DeadLetterMessage is DeadLetter for a message returned by Consumer.Fetch:
// it also records the source partition and offset (headers
// vigil.source.partition and vigil.source.offset, decimal), and the
// message's own tenant (m.Tenant; ctx's when empty) in vigil.tenant. The
// ingester can probe for it with interface{ DeadLetterMessage(...) error }.
func (d *DeadLetterProducer) DeadLetterMessage(ctx context.Context, m queue.Message, reason string) error {
	tenant := m.Tenant
	if tenant == "" {
		tenant = auth.Tenant(ctx)
	}
	return d.p.produce(ctx, []*sarama.ProducerMessage{d.sourced(m.Key, m.Value, []byte(tenant), m.Partition, m.Position, reason)})
}

// sourced returns the dead-letter message of a consumed message, its
// vigil.tenant header's value (as it came, valid or not) and reason.
func (d *DeadLetterProducer) sourced(key string, value, tenant []byte, partition int32, offset int64, reason string) *sarama.ProducerMessage {
	return d.p.message(key, value, []sarama.RecordHeader{
		{Key: []byte(HeaderReason), Value: []byte(reason)},
		{Key: []byte(HeaderSourceTopic), Value: []byte(d.source)},
		{Key: []byte(HeaderSourcePartition), Value: strconv.AppendInt(nil, int64(partition), 10)},
		{Key: []byte(HeaderSourceOffset), Value: strconv.AppendInt(nil, offset, 10)},
		{Key: []byte(HeaderTenant), Value: tenant},
	})
}

// Close closes the producer; see Producer.Close.
func (d *DeadLetterProducer) Close() error { return d.p.Close() }
