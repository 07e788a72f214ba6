package collector

import (
	"context"
	"sync"

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

// Publish splits value by trace and publishes the parts to Down.
func (b ByTrace) Publish(ctx context.Context, key string, value []byte) error {
	spans, err := otlptraces.Unmarshal(nil, value)
	if err != nil || len(spans) == 0 {
		return b.Down.Publish(ctx, key, value)
	}
	groups := otlptraces.SplitByTrace(spans)
	if len(groups) == 1 {
		return b.Down.Publish(ctx, groups[0][0].TraceID.String(), value)
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		data, err := otlptraces.Marshal(g)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Down.Publish(ctx, g[0].TraceID.String(), data)
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

var _ queue.Producer = ByTrace{}
