package kafka

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/promutil"
)

// Reasons of vigil_kafka_produce_errors_total.
const (
	reasonTooLarge    = "too_large"    // the batch exceeds MaxMessageBytes or the topic's limit
	reasonUnreachable = "unreachable"  // no connection to the cluster could be made
	reasonTimeout     = "timeout"      // no acknowledgement within the publish deadline
	reasonClosed      = "closed"       // Publish on a closed producer
	reasonBroker      = "broker"       // any other error returned by Kafka or sarama
	reasonOpen        = "breaker_open" // failed fast: the producer's circuit breaker is open
)

type metrics struct {
	producedMessages *prometheus.CounterVec
	producedBytes    *prometheus.CounterVec
	produceErrors    *prometheus.CounterVec
	publishDuration  *prometheus.HistogramVec
	consumedMessages *prometheus.CounterVec
	consumedBytes    *prometheus.CounterVec
	commits          *prometheus.CounterVec
	commitErrors     *prometheus.CounterVec
	commitsRevoked   *prometheus.CounterVec
	lag              *prometheus.GaugeVec
	rebalances       *prometheus.CounterVec
	invalidTenants   *prometheus.CounterVec
}

// newMetrics creates the metrics and registers them on reg if it is not nil.
// A metric already registered (a producer, a dead-letter producer and a
// consumer in one process) is shared rather than reported as an error.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "vigil", "kafka"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		producedMessages: counter("produced_messages_total", "Messages acknowledged by Kafka with acks=all.", "topic"),
		producedBytes:    counter("produced_bytes_total", "Key and value bytes of messages acknowledged by Kafka, before compression.", "topic"),
		produceErrors: counter("produce_errors_total",
			"Publish, PublishBatch and DeadLetter calls that returned an error, by reason: too_large, unreachable, timeout, closed, broker, breaker_open.", "topic", "reason"),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "publish_duration_seconds",
			Help:    "Duration of successful Publish and PublishBatch calls, from call to acknowledgement of every message.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"topic"}),
		consumedMessages: counter("consumed_messages_total", "Messages returned by Fetch, redeliveries included.", "topic"),
		consumedBytes:    counter("consumed_bytes_total", "Value bytes of messages returned by Fetch.", "topic"),
		commits:          counter("commits_total", "Commit calls whose offsets Kafka accepted.", "topic"),
		commitErrors:     counter("commit_errors_total", "Commit calls that returned an error.", "topic"),
		commitsRevoked: counter("commit_revoked_partitions_total",
			"Partitions a Commit left uncommitted because they were revoked by a rebalance; their messages are redelivered.", "topic"),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "consumer_lag",
			Help: "Messages in a partition owned by this consumer after the last one handed to Fetch (high watermark minus next offset).",
		}, []string{"topic", "partition"}),
		rebalances: counter("rebalances_total", "Consumer group sessions started: the first join and every rebalance.", "topic"),
		invalidTenants: counter("invalid_tenant_messages_total",
			"Consumed messages whose vigil.tenant header is not a tenant id: dead-lettered by the consumer, never returned by Fetch.", "topic"),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.producedMessages = promutil.Register(reg, m.producedMessages, &err)
	m.producedBytes = promutil.Register(reg, m.producedBytes, &err)
	m.produceErrors = promutil.Register(reg, m.produceErrors, &err)
	m.publishDuration = promutil.Register(reg, m.publishDuration, &err)
	m.consumedMessages = promutil.Register(reg, m.consumedMessages, &err)
	m.consumedBytes = promutil.Register(reg, m.consumedBytes, &err)
	m.commits = promutil.Register(reg, m.commits, &err)
	m.commitErrors = promutil.Register(reg, m.commitErrors, &err)
	m.commitsRevoked = promutil.Register(reg, m.commitsRevoked, &err)
	m.lag = promutil.Register(reg, m.lag, &err)
	m.rebalances = promutil.Register(reg, m.rebalances, &err)
	m.invalidTenants = promutil.Register(reg, m.invalidTenants, &err)
	if err != nil {
		return nil, fmt.Errorf("cannot register kafka metrics: %w", err)
	}
	return m, nil
}
