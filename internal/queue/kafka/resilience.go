package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// Resilience of Vigil's own Kafka calls (docs/resilience.md, "Used by
// Vigil itself"): each producer and each consumer's commits have their
// own circuit breaker and dynamic timeout, and the commits their adaptive
// retry window; their series carry name="kafka-produce-<topic>" and
// name="kafka-commit-<topic>".
const (
	// publishTimeoutFloor is the dynamic timeout's floor of one Publish
	// (PublishTimeout is its ceiling): an acks=all produce takes
	// milliseconds on a healthy cluster.
	publishTimeoutFloor = 2 * time.Second
	// commitAttempts bounds the tries of one Commit; the retry window
	// bounds them further while the coordinator keeps failing.
	commitAttempts = 5
)

var commitBackoff = resilience.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}

// produceResilience returns the breaker and dynamic timeout of a
// producer to topic. No retries at this level: sarama retries a produce
// request itself (Producer.Retry, which idempotence needs), and a Publish
// that fails is the caller's to retry later (the collector's spool).
func produceResilience(o Options, topic string) (resilience.Policy, error) {
	name := "kafka-produce-" + topic
	reg := sharedRegisterer(o.Registerer)
	br, err := newBreaker(name, reg)
	if err != nil {
		return resilience.Policy{}, err
	}
	to, err := resilience.NewDynamicTimeout(resilience.TimeoutConfig{Name: name, Registerer: reg,
		Initial: o.PublishTimeout, Floor: min(publishTimeoutFloor, o.PublishTimeout), Ceiling: o.PublishTimeout})
	if err != nil {
		return resilience.Policy{}, err
	}
	return resilience.Policy{Breaker: br, Timeout: to}, nil
}

// commitResilience returns the breaker and retry window of a consumer's
// commits to topic. sarama's broker call takes no context: one OffsetCommit
// request is bounded by the client's network timeouts, not a dynamic one.
func commitResilience(o Options) (resilience.Policy, error) {
	name := "kafka-commit-" + o.Topic
	reg := sharedRegisterer(o.Registerer)
	br, err := newBreaker(name, reg)
	if err != nil {
		return resilience.Policy{}, err
	}
	win, err := resilience.NewRetryWindow(resilience.RetryWindowConfig{Name: name, Registerer: reg})
	if err != nil {
		return resilience.Policy{}, err
	}
	return resilience.Policy{Breaker: br, Retry: &resilience.Retry{Window: win, MaxAttempts: commitAttempts, Backoff: commitBackoff}}, nil
}

// newBreaker returns a breaker with the SDK's defaults: open after five
// failures in a row (or half of at least 20 in 10s), probe after 5s.
func newBreaker(name string, reg prometheus.Registerer) (*resilience.Breaker, error) {
	bc := resilience.DefaultBreakerConfig(name)
	bc.Registerer = reg
	return resilience.NewBreaker(bc)
}

// sharedRegisterer registers on reg, and takes a collector already
// registered under the same name and labels as registered: a producer or
// consumer opened again on one registry (a restart within the process, a
// test) keeps the series of the first, as the vigil_kafka_* metrics do.
func sharedRegisterer(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return tolerant{reg}
}

type tolerant struct{ prometheus.Registerer }

func (t tolerant) Register(c prometheus.Collector) error {
	err := t.Registerer.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot register Kafka resilience metrics: %w", err)
	}
	return nil
}
