package diskqueue

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/promutil"
)

// syncFunc makes a file durable; the roles wrap fdatasync to time it.
type syncFunc func(*os.File) error

type metrics struct {
	publishedMessages prometheus.Counter
	publishedBytes    prometheus.Counter
	consumedMessages  prometheus.Counter
	committedBytes    prometheus.Counter
	unconsumedBytes   prometheus.Gauge
	fullRejections    prometheus.Counter
	fsyncDuration     *prometheus.HistogramVec
}

// newMetrics creates the queue's metrics and registers them on reg if it is
// not nil. A metric that is already registered (a producer and a consumer
// opened in one process, or a queue reopened) is shared rather than
// reported as an error.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "vigil", "queue"
	m := &metrics{
		publishedMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "published_messages_total",
			Help: "Messages durably appended to the disk queue.",
		}),
		publishedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "published_bytes_total",
			Help: "Bytes durably appended to the disk queue, record headers included.",
		}),
		consumedMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "consumed_messages_total",
			Help: "Messages returned by Fetch, redeliveries after a restart included.",
		}),
		committedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "committed_bytes_total",
			Help: "Bytes by which the committed position advanced.",
		}),
		unconsumedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "unconsumed_bytes",
			Help: "Bytes written but not yet committed; Publish rejects batches that would exceed the bound.",
		}),
		fullRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "full_rejections_total",
			Help: "Publish calls rejected with ErrFull because the queue held its maximum of unconsumed bytes.",
		}),
		fsyncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "fsync_duration_seconds",
			Help:    "Duration of fsyncs, by role: producer (segments) or consumer (committed offset).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"role"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.publishedMessages = promutil.Register(reg, m.publishedMessages, &err)
	m.publishedBytes = promutil.Register(reg, m.publishedBytes, &err)
	m.consumedMessages = promutil.Register(reg, m.consumedMessages, &err)
	m.committedBytes = promutil.Register(reg, m.committedBytes, &err)
	m.unconsumedBytes = promutil.Register(reg, m.unconsumedBytes, &err)
	m.fullRejections = promutil.Register(reg, m.fullRejections, &err)
	m.fsyncDuration = promutil.Register(reg, m.fsyncDuration, &err)
	if err != nil {
		return nil, fmt.Errorf("cannot register queue metrics: %w", err)
	}
	return m, nil
}

// timedSync returns a syncFunc that records its durations under role.
func (m *metrics) timedSync(role string) syncFunc {
	h := m.fsyncDuration.WithLabelValues(role)
	return func(f *os.File) error {
		start := time.Now()
		err := fsutil.Fdatasync(f)
		h.Observe(time.Since(start).Seconds())
		return err
	}
}
