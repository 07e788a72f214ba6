package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// TestPublishFailsFastWhileBrokersAreDown: a producer whose brokers keep
// failing opens its circuit breaker (in the metrics), and Publish then
// fails at once, naming the brokers, so that the collector spools its
// batches instead of waiting PublishTimeout for each.
func TestPublishFailsFastWhileBrokersAreDown(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"} // nothing listens on port 1
	opts.PublishTimeout = time.Second
	opts.Registerer = reg
	p, err := NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, p)
	var last error
	for i := 0; i < 20 && !errors.Is(last, resilience.ErrOpen); i++ {
		last = publishBounded(t, p, context.Background(), []byte("batch"))
		if last == nil {
			t.Fatal("Publish to an unreachable broker succeeded")
		}
	}
	if !errors.Is(last, resilience.ErrOpen) || !strings.Contains(last.Error(), "127.0.0.1:1") {
		t.Fatalf("Publish after repeated failures: got %v; want resilience.ErrOpen naming the broker", last)
	}
	if got := testutil.ToFloat64(p.m.produceErrors.WithLabelValues(opts.Topic, reasonOpen)); got != 1 {
		t.Errorf("vigil_kafka_produce_errors_total{reason=%q}: got %v, want 1", reasonOpen, got)
	}
	const state = `
# HELP vigil_resilience_breaker_state 1 for the circuit breaker's current state (closed, open or half-open), 0 for the others.
# TYPE vigil_resilience_breaker_state gauge
vigil_resilience_breaker_state{name="kafka-produce-vigil.logs",state="closed"} 0
vigil_resilience_breaker_state{name="kafka-produce-vigil.logs",state="half-open"} 0
vigil_resilience_breaker_state{name="kafka-produce-vigil.logs",state="open"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(state), "vigil_resilience_breaker_state"); err != nil {
		t.Error(err)
	}
}
