// Package spool is the collector's bounded disk spool for distributed mode:
// a store-and-forward queue.Producer between the collector's pipeline and
// Kafka, so that intake keeps working and nothing is lost while Kafka is
// down or slow.
//
// The spool keeps one durable log per grade (Lanes, opened by OpenLanes on
// a spool directory: grade 4's in the directory itself, as the single-log
// release kept every batch, grades 1 to 3 in subdirectories). Publish
// (and PublishBatch, several batches for one fsync) appends batches
// durably to the lane of the grade on its context (queue.WithGrade;
// grade 4 when unknown), each prefixed with its enqueue time, and returns
// queue.ErrFull once the lanes together hold the bound; the collector
// then answers HTTP 429 and pauses tailing. Run is the forwarder: a round
// at a time, from the best grade's lane that has batches, it publishes
// the batches with their original keys and tenants to the downstream
// producer and
// commits the lane's position only after the downstream acknowledged. So
// a backlog drains grade 1 first, and each lane keeps its order. A
// refused round waits at the head of its lane, never skipped; calls to
// the downstream pass a circuit breaker, and retries are granted by an
// adaptive retry window and spaced by backoff with jitter
// (sdk/resilience).
//
// Delivery is at-least-once: a batch forwarded but not yet committed when
// the process stops (or is killed) is forwarded again after a restart; the
// stores deduplicate by record id. The layout, record prefix, guarantees
// and metrics are described in docs/format/spool.md.
package spool
