package ingester

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	consumed     prometheus.Counter
	written      prometheus.Counter
	batches      prometheus.Counter
	writeErrors  prometheus.Counter
	commitErrors prometheus.Counter
	deadLettered *prometheus.CounterVec
	writeSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "ingester", Name: "consumed_records_total",
			Help: "Log records read from the queue.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "ingester", Name: "indexed_records_total",
			Help: "Log records durably accepted by the store (duplicates included, the store skips them).",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "ingester", Name: "committed_batches_total",
			Help: "Store writes whose queue position was committed.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "ingester", Name: "store_write_errors_total",
			Help: "Failed store writes; each is retried with backoff.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "ingester", Name: "commit_errors_total",
			Help: "Queue commits that failed after the store accepted the batch; the batch is redelivered and deduplicated.",
		}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "ingester", Name: "dead_lettered_total",
			Help: "Batches or records sent to the dead-letter destination, by reason.",
		}, []string{"reason"}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "vigil", Subsystem: "ingester", Name: "store_write_seconds",
			Help:    "Duration of one bulk store write.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.written, m.batches, m.writeErrors, m.commitErrors, m.deadLettered, m.writeSeconds)
	}
	m.deadLettered.WithLabelValues("undecodable")
	m.deadLettered.WithLabelValues("rejected")
	return m
}
