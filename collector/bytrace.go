package collector

import (
	"context"
	"errors"
	"sync"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
)

// ByTrace is a producer of span batches that publishes each trace of a
// batch as its own message keyed by its trace id (32 hex digits), so a
// consumer of the topic sees every span of a trace on one partition. It
// sits between the collector's spool and Kafka: the spool keeps the
// batches as received, and ByTrace splits them when they are forwarded.
//
// The messages of one batch are published concurrently, and Publish
// returns nil once every one was acknowledged. When some fail, the error
// of the first is returned and the whole batch is forwarded again later;
// the traces already acknowledged are then delivered twice, and the span
// store keeps one copy (spans are identified by trace and span id). A
// batch that is not a valid OTLP span batch is published as it is, under
// the key it came with, for the ingester to dead-letter.
type ByTrace struct {
	Down queue.Producer
}

// byTraceConcurrency bounds the messages of one batch in flight at once.
const byTraceConcurrency = 64

// Publish splits value by trace and publishes the parts to Down.
func (b ByTrace) Publish(ctx context.Context, key string, value []byte) error {
	spans, err := otlptraces.Unmarshal(nil, value)
	if err != nil || len(spans) == 0 {
		return b.Down.Publish(ctx, key, value)
	}
	groups := otlptraces.SplitByTrace(spans)
	if len(groups) == 1 {
		return b.publishTrace(ctx, groups[0], value)
	}
	errs := make([]error, len(groups))
	sem := make(chan struct{}, byTraceConcurrency)
	var wg sync.WaitGroup
	for i, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = b.publishTrace(ctx, g, nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// publishTrace publishes the spans of one trace (data is their encoding,
// or nil) under the trace id. A trace larger than the downstream accepts
// (Kafka's message size) is split in halves under the same key, so one
// huge trace does not stop the batches behind it.
func (b ByTrace) publishTrace(ctx context.Context, spans []model.Span, data []byte) error {
	if data == nil {
		var err error
		if data, err = otlptraces.Marshal(spans); err != nil {
			return err
		}
	}
	err := b.Down.Publish(ctx, spans[0].TraceID.String(), data)
	if !errors.Is(err, queue.ErrTooLarge) || len(spans) < 2 {
		return err
	}
	half := len(spans) / 2
	if err := b.publishTrace(ctx, spans[:half], nil); err != nil {
		return err
	}
	return b.publishTrace(ctx, spans[half:], nil)
}

var _ queue.Producer = ByTrace{}
