package diskqueue

import (
	"context"
	"errors"

	"github.com/vigilhq/vigil/internal/queue"
)

var (
	_ queue.BatchProducer = (*Queue)(nil)
	_ queue.Consumer      = (*Queue)(nil)
)

// Queue is a producer and a consumer of one directory in one process, for
// vigil all-in-one. Publish is safe for concurrent use; Fetch and Commit
// are meant for one consumer goroutine, which Publish wakes without delay.
type Queue struct {
	p *Producer
	c *Consumer
}

// Open opens dir as both producer and consumer. It takes both the producer
// and the consumer lock, so no other process can use the directory.
func Open(opts Options) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	p, err := openProducer(opts, m)
	if err != nil {
		return nil, err
	}
	c, err := openConsumer(opts, m, localHeads{p})
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	p.mu.Lock()
	p.commits = localCommits{c}
	p.m.unconsumedBytes.Set(float64(p.written - c.committed.Load()))
	p.mu.Unlock()
	return &Queue{p: p, c: c}, nil
}

// Publish implements queue.Producer; see Producer.Publish.
func (q *Queue) Publish(ctx context.Context, key string, value []byte) error {
	return q.p.Publish(ctx, key, value)
}

// PublishBatch implements queue.BatchProducer; see Producer.PublishBatch.
func (q *Queue) PublishBatch(ctx context.Context, records []queue.Record) error {
	return q.p.PublishBatch(ctx, records)
}

// MaxMessageBytes returns the largest key and value, together, that
// Publish can accept; see Producer.MaxMessageBytes.
func (q *Queue) MaxMessageBytes() int { return q.p.MaxMessageBytes() }

// RecordSize returns the bytes a record takes of Options.MaxBytes; see
// Producer.RecordSize.
func (q *Queue) RecordSize(tenant, key string, valueLen int) int64 {
	return q.p.RecordSize(tenant, key, valueLen)
}

// MaxBytes returns Options.MaxBytes.
func (q *Queue) MaxBytes() int64 { return q.p.MaxBytes() }

// Pending calls fn with each durable record Fetch has yet to return; see
// Consumer.Pending.
func (q *Queue) Pending(fn func(queue.Message) error) error { return q.c.Pending(fn) }

// Fetch implements queue.Consumer; see Consumer.Fetch.
func (q *Queue) Fetch(ctx context.Context) (queue.Message, error) {
	return q.c.Fetch(ctx)
}

// TryFetch returns the next message if one is available now; see
// Consumer.TryFetch.
func (q *Queue) TryFetch() (queue.Message, bool, error) { return q.c.TryFetch() }

// Commit implements queue.Consumer; see Consumer.Commit.
func (q *Queue) Commit(ctx context.Context, m queue.Message) error {
	return q.c.Commit(ctx, m)
}

// Close closes the consumer, then the producer, which syncs what was written.
func (q *Queue) Close() error {
	return errors.Join(q.c.Close(), q.p.Close())
}

// localHeads lets a consumer follow a producer in the same process: it
// reads the synced position from memory and is woken on every advance.
type localHeads struct{ p *Producer }

func (h localHeads) head() (int64, error)     { return h.p.synced.Load(), nil }
func (h localHeads) changed() <-chan struct{} { return h.p.notify.wait() }
func (h localHeads) close() error             { return nil }

// localCommits lets a producer see the committed position of a consumer in
// the same process as soon as it is durable.
type localCommits struct{ c *Consumer }

func (l localCommits) committed(bool) (int64, error) { return l.c.committed.Load(), nil }
