package sdk

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// tracesPolicyName is the name label of the trace exporter's breaker and
// retry window series.
const tracesPolicyName = "sdk_traces"

// newExportPolicy returns what the trace exporter applies to every export
// to the collector, instead of the OpenTelemetry exporter's own retries:
// a circuit breaker and up to 5 attempts spaced by backoff with jitter,
// each retry granted by the adaptive retry window. Each attempt keeps the
// exporter's own timeout (10 s).
func newExportPolicy(reg prometheus.Registerer) (resilience.Policy, error) {
	bc := resilience.DefaultBreakerConfig(tracesPolicyName)
	bc.Registerer = reg
	b, err := resilience.NewBreaker(bc)
	if err != nil {
		return resilience.Policy{}, err
	}
	wc := resilience.DefaultRetryWindowConfig(tracesPolicyName)
	wc.Registerer = reg
	w, err := resilience.NewRetryWindow(wc)
	if err != nil {
		return resilience.Policy{}, err
	}
	r := resilience.DefaultRetry(w)
	r.MaxAttempts = 5
	return resilience.Policy{Breaker: b, Retry: r}, nil
}

// idempotent marks every OTLP export as safe to replay, with an
// Idempotency-Key of its own that its retries keep: the collector stores
// a span once by its ids, so resilience.Transport may retry the POST.
type idempotent struct{ next http.RoundTripper }

func (t idempotent) RoundTrip(req *http.Request) (*http.Response, error) {
	var key [16]byte
	_, _ = rand.Read(key[:])
	req = req.Clone(req.Context())
	req.Header.Set("Idempotency-Key", hex.EncodeToString(key[:]))
	return t.next.RoundTrip(req)
}
