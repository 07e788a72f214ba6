// Package queue defines the durable queue between collectors and ingesters.
// Two implementations exist: an embedded disk queue (all-in-one) and Kafka
// (distributed). Collector and ingester code sees only these types.
package queue

import (
	"context"
	"errors"
)

// ErrFull is returned by Publish when the queue holds its maximum number of
// unconsumed bytes. Callers apply backpressure (HTTP 429, paused tailing)
// and retry later; nothing was written.
var ErrFull = errors.New("queue is full")

// ErrClosed is returned by operations on a closed queue.
var ErrClosed = errors.New("queue is closed")

// Message is one batch read from the queue.
type Message struct {
	// Key groups related batches (the service name for logs); batches with
	// the same key keep their order.
	Key string
	// Value is the batch: an OTLP ExportLogsServiceRequest in protobuf.
	Value []byte
	// Position identifies the message for Commit; opaque to callers.
	Position int64
	// Partition is the source partition for queues that have several; 0 otherwise.
	Partition int32
}

// Producer appends batches to the queue.
type Producer interface {
	// Publish returns nil only once the batch is durable: it survives a
	// crash of this process and of the machine's page cache.
	// It returns ErrFull without writing when the queue is full.
	Publish(ctx context.Context, key string, value []byte) error
}

// Consumer reads batches in order and records progress.
type Consumer interface {
	// Fetch blocks until a message is available or ctx ends.
	// The returned Value must not be modified and is valid until Commit.
	Fetch(ctx context.Context) (Message, error)
	// Commit durably records that m and every message fetched before it
	// have been processed; they will not be delivered again after a restart.
	Commit(ctx context.Context, m Message) error
}
