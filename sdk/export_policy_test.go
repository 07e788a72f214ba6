package sdk

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A span export the collector answers 503 is retried through the
// resilience policy — once granted by the retry window, with an
// Idempotency-Key — and arrives; the OpenTelemetry exporter's own retry
// loop is off.
func TestTraceExportRetriedThroughPolicy(t *testing.T) {
	sk := newSink(t)
	sk.traceFails = 1
	shutdown, err := Init(Config{Service: "s", Grade: 2, Collector: sk.srv.URL, LogOutput: &syncBuffer{}, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := current.Load().m.reg
	_, span := current.Load().tracer.Start(context.Background(), "op")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	sk.mu.Lock()
	posts := append([]string(nil), sk.tracePosts...)
	sk.mu.Unlock()
	if len(posts) != 2 {
		t.Fatalf("span exports: %d; want 2, the refused one and its retry", len(posts))
	}
	if posts[0] == "" || posts[0] != posts[1] {
		t.Errorf("Idempotency-Key of the exports: %q; want one key, the retry's the same as the refused attempt's", posts)
	}
	const want = `
# HELP vigil_resilience_retries_total Retries asked of the adaptive retry window, by decision: granted or denied (budget of the period used up).
# TYPE vigil_resilience_retries_total counter
vigil_resilience_retries_total{decision="denied",name="sdk_traces"} 0
vigil_resilience_retries_total{decision="granted",name="sdk_traces"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_resilience_retries_total"); err != nil {
		t.Error(err)
	}
}
