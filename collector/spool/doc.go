// Package spool is the collector's bounded disk spool for distributed mode:
// a store-and-forward queue.Producer between the collector's pipeline and
// Kafka, so that intake keeps working and nothing is lost while Kafka is
// down or slow.
//
// Publish (and PublishBatch, several batches for one fsync) appends
// batches durably to the spool's log — a disk queue directory the caller
// opens and hands to Open — each prefixed with its enqueue time, and
// returns queue.ErrFull once the log holds its bound; the collector then
// answers HTTP 429 and pauses tailing. Run is the forwarder: it reads the
// spool in order, publishes the batches with their original keys to the
// downstream producer, a round at a time, and commits the spool position
// only after the downstream acknowledged. A failing round is retried with
// exponential backoff and jitter, never skipped and never overtaken, so
// the order of publication is the order of delivery.
//
// Delivery is at-least-once: a batch forwarded but not yet committed when
// the process stops (or is killed) is forwarded again after a restart; the
// stores deduplicate by record id. The layout, record prefix, guarantees
// and metrics are described in docs/format/spool.md.
package spool
