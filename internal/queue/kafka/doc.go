// Package kafka is Vigil's queue on Apache Kafka (distributed mode): an
// implementation of queue.Producer and queue.Consumer on github.com/IBM/sarama,
// and the dead-letter producer of the ingester.
//
// Each message is one batch (an OTLP ExportLogsServiceRequest in protobuf,
// docs/format/queue.md) keyed by service name, so one service's batches stay
// in order on one partition. Its tenant travels in header vigil.tenant
// (HeaderTenant). Topics, headers, commit semantics and every option are
// described in docs/format/kafka.md.
//
// Delivery is at-least-once end to end:
//
//   - Producer.Publish returns nil only after the idempotent producer got
//     acks=all for the batch; it fails within Options.PublishTimeout (or the
//     context's deadline) when the cluster is unreachable, so the collector
//     spools instead of hanging.
//   - Consumer commits only in Commit, synchronously: Commit(m) commits, on
//     every partition, the offset after the highest message Fetch returned
//     up to m. Messages of partitions revoked by a rebalance before their
//     Commit are redelivered to the new owner; Commit returns nil for them.
//   - Close of a consumer leaves the group; what was fetched and not
//     committed is delivered again.
package kafka
