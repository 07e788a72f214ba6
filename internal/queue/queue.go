// Package queue defines the durable queue between collectors and ingesters,
// one per signal: log batches (OTLP ExportLogsServiceRequest, keyed by
// service) and span batches (OTLP ExportTraceServiceRequest, one trace per
// message, keyed by trace id). Two implementations exist: an embedded disk
// queue (all-in-one) and Kafka (distributed); the collector's spool is a
// third producer in front of Kafka. Collector and ingester code sees only
// these types.
//
// Every batch belongs to one tenant (docs/security.md): the tenant that
// authenticated the request it came from, auth.DefaultTenant when auth is
// off. The queue carries it beside the batch (Message.Tenant), never inside
// it, and a producer never mixes the records of two tenants in one message.
package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/auth"
)

// ErrFull is returned by Publish when the queue holds its maximum number of
// unconsumed bytes. Callers apply backpressure (HTTP 429, paused tailing)
// and retry later; nothing was written.
var ErrFull = errors.New("queue is full")

// ErrClosed is returned by operations on a closed queue.
var ErrClosed = errors.New("queue is closed")

// ErrTooLarge is wrapped by the error Publish (and PublishBatch) returns
// for a batch the queue could never accept, whatever it holds: larger than
// the disk queue's bound or than Kafka's message size. Nothing was
// written, and retrying cannot help: split the batch or raise the limit.
// Every backend wraps this one value, with the detail of its limit.
var ErrTooLarge = errors.New("batch is larger than the queue accepts")

// ErrInvalidTenant is wrapped by the error Publish and PublishBatch
// return for a record whose tenant is not a tenant id (auth.ValidTenant);
// nothing was written.
var ErrInvalidTenant = errors.New("invalid tenant id")

// Message is one batch read from the queue.
type Message struct {
	// Tenant owns every record of the batch: a valid tenant id
	// (auth.ValidTenant), always set by Fetch. Messages written before
	// the queue carried tenants (an earlier release's disk queue segment,
	// a Kafka message without the vigil.tenant header) are
	// auth.DefaultTenant's.
	Tenant string
	// Key groups related batches: the service name for logs, the trace id
	// (32 lower-case hex digits) for spans. Batches with the same key keep
	// their order.
	Key string
	// Value is the batch: an OTLP ExportLogsServiceRequest or
	// ExportTraceServiceRequest in protobuf.
	Value []byte
	// Position identifies the message for Commit; opaque to callers.
	Position int64
	// Partition is the source partition for queues that have several; 0 otherwise.
	Partition int32
}

// Record is one batch to publish, its key and its tenant (see Message).
type Record struct {
	// Tenant owns the batch; "" means the tenant of the context of the
	// PublishBatch call (auth.Tenant).
	Tenant string
	Key    string
	Value  []byte
}

// TenantOf returns the tenant r is published under with ctx: r.Tenant, or
// auth.Tenant(ctx) when it is empty. It returns an error wrapping
// ErrInvalidTenant when that is not a valid tenant id.
func TenantOf(ctx context.Context, r Record) (string, error) {
	t := r.Tenant
	if t == "" {
		t = auth.Tenant(ctx)
	}
	if !auth.ValidTenant(t) {
		return "", fmt.Errorf("cannot publish a batch for tenant %.140q: %w", t, ErrInvalidTenant)
	}
	return t, nil
}

// Producer appends batches to the queue.
type Producer interface {
	// Publish returns nil only once the batch is durable: it survives a
	// crash of this process and of the machine's page cache.
	// It returns ErrFull without writing when the queue is full.
	// The batch is published under the tenant of ctx (auth.Tenant:
	// auth.DefaultTenant when auth is off).
	Publish(ctx context.Context, key string, value []byte) error
}

// BatchProducer is a Producer that can publish several records for the
// price of one: one fsync, one round trip. Producers that can are probed
// for it (see PublishBatch).
type BatchProducer interface {
	Producer
	// PublishBatch returns nil only once every record is durable. It
	// returns ErrFull when they do not all fit, and an error wrapping
	// ErrTooLarge when one of them, or all together, never could; in both
	// cases nothing was written. After another error some records may be
	// durable and others not: the caller publishes them all again, and
	// consumers see those twice (delivery is at-least-once).
	// The records are not retained. Each record is published under its
	// Tenant, or that of ctx when it has none (TenantOf); a record whose
	// tenant is not a valid id fails the call with an error wrapping
	// ErrInvalidTenant, writing nothing.
	PublishBatch(ctx context.Context, records []Record) error
}

// PublishBatch publishes records to p: in one call when p is a
// BatchProducer, otherwise with one Publish each, in order, under the
// record's tenant (TenantOf), stopping at the first error.
func PublishBatch(ctx context.Context, p Producer, records []Record) error {
	if bp, ok := p.(BatchProducer); ok {
		return bp.PublishBatch(ctx, records)
	}
	for _, r := range records {
		if _, err := TenantOf(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range records {
		rctx := ctx
		if r.Tenant != "" {
			rctx = auth.WithTenant(ctx, r.Tenant)
		}
		if err := p.Publish(rctx, r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

// MaxMessageBytes returns the largest record, key and value bytes
// together, that p accepts, when p reports it with a method
// MaxMessageBytes() int; otherwise, or when that returns 0 or less, it
// returns 0: no known bound. A producer of batches that can be cut (the
// spans of a trace) cuts them to fit.
func MaxMessageBytes(p Producer) int {
	if l, ok := p.(interface{ MaxMessageBytes() int }); ok {
		return max(0, l.MaxMessageBytes())
	}
	return 0
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
