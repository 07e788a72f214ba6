package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// Redrive publishes again, to the same topic and with the same keys and
// tenants (header vigil.tenant), every
// batch Kafka appended to opts.Topic between from and to (broker append
// times), as long as the topic still retains them. Ingesters store the
// records again and the store keeps one copy of each id, so re-driving a
// window that was partly stored fills its gaps without duplicating
// anything. progress, when not nil, is called after each partition with
// the batches re-published so far. It returns that count.
func Redrive(ctx context.Context, opts Options, from, to time.Time, progress func(partition int32, batches int)) (int, error) {
	client, err := sarama.NewClient(opts.Brokers, opts.consumerConfig())
	if err != nil {
		return 0, fmt.Errorf("cannot connect to Kafka: %w", err)
	}
	defer client.Close()
	parts, err := client.Partitions(opts.Topic)
	if err != nil {
		return 0, fmt.Errorf("cannot list partitions of %s: %w", opts.Topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, err
	}
	defer consumer.Close()
	producer, err := NewProducer(opts)
	if err != nil {
		return 0, err
	}
	defer producer.Close()

	total := 0
	for _, p := range parts {
		start, err := client.GetOffset(opts.Topic, p, from.UnixMilli())
		if err != nil {
			return total, fmt.Errorf("partition %d: cannot find the offset at %s: %w", p, from, err)
		}
		end, err := client.GetOffset(opts.Topic, p, to.UnixMilli())
		if err != nil {
			return total, fmt.Errorf("partition %d: cannot find the offset at %s: %w", p, to, err)
		}
		if end == sarama.OffsetNewest || end < 0 {
			if end, err = client.GetOffset(opts.Topic, p, sarama.OffsetNewest); err != nil {
				return total, err
			}
		}
		if start < 0 || start >= end {
			continue // nothing retained in the window
		}
		n, err := redrivePartition(ctx, consumer, producer, opts.Topic, p, start, end)
		total += n
		if err != nil {
			return total, fmt.Errorf("partition %d: %w", p, err)
		}
		if progress != nil {
			progress(p, total)
		}
	}
	return total, nil
}

func redrivePartition(ctx context.Context, consumer sarama.Consumer, producer *Producer, topic string, p int32, start, end int64) (int, error) {
	pc, err := consumer.ConsumePartition(topic, p, start)
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case err := <-pc.Errors():
			return n, err
		case m := <-pc.Messages():
			if m == nil {
				return n, errors.New("partition consumer closed")
			}
			if m.Offset >= end {
				return n, nil
			}
			// The tenant goes with the batch as it came: a message
			// without the header stays the default tenant's, one with an
			// invalid header is dead-lettered by the consumer again.
			var headers []sarama.RecordHeader
			if raw, ok := rawTenant(m.Headers); ok {
				headers = []sarama.RecordHeader{{Key: []byte(HeaderTenant), Value: raw}}
			}
			if err := producer.produce(ctx, []*sarama.ProducerMessage{producer.message(string(m.Key), m.Value, headers)}); err != nil {
				return n, err
			}
			n++
			if m.Offset+1 >= end {
				return n, nil
			}
		}
	}
}
