// Package diskqueue is Vigil's embedded, disk-backed implementation of
// queue.Producer and queue.Consumer: the queue between collector and
// ingester when Vigil runs without Kafka.
//
// A queue is a directory of append-only segment files holding
// length-prefixed, CRC-protected records, a committed-offset file written by
// the consumer and a head file written by the producer. The layout, crash
// semantics and fsync policy are described in docs/format/diskqueue.md.
//
// Two ways to use a directory:
//
//   - Open returns a Queue that is both producer and consumer in one process
//     (vigil all-in-one). The consumer is woken as soon as a batch is durable.
//   - OpenProducer and OpenConsumer open one role each, so a collector and an
//     ingester in two processes on one host can share the directory. Each role
//     holds an exclusive flock, so a directory has at most one producer and one
//     consumer. The consumer polls the producer's head file every 50ms; the
//     producer re-reads the consumer's offset file at most every 100ms, and
//     always before it reports ErrFull.
//
// Delivery is at-least-once: Publish returns nil only after the batch is
// fsync'ed, Commit only after the new position is fsync'ed, and a reopened
// consumer starts at the last committed position. A batch whose Publish did
// not return nil may or may not be delivered.
package diskqueue
