package patterns

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	mined        prometheus.Counter
	dropped      *prometheus.CounterVec
	evicted      prometheus.Counter
	streams      prometheus.Gauge
	flushed      prometheus.Counter
	flushErrors  prometheus.Counter
	flushSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "vigil", "patterns"
	m := &metrics{
		mined: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mined_lines_total",
			Help: "Log lines counted in a mined pattern at ingest."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dropped_lines_total",
			Help: "Log lines stored but not counted in a pattern, by the bound that turned them away (line_too_long, max_streams, max_buckets, max_clusters, flush_failed)."}, []string{"reason"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "evicted_patterns_total",
			Help: "Patterns forgotten because their stream's miner held its maximum of clusters."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "streams",
			Help: "Streams (× level) with a pattern miner in memory."}),
		flushed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_flushed_total",
			Help: "Pattern records (stream × level × pattern × flush interval) written to the store."}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "flush_errors_total",
			Help: "Flushes of mined patterns the store refused; their records are retried at the next flush."}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "flush_duration_seconds",
			Help: "Duration of a flush of mined patterns to the store.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
	}
	for _, r := range []string{"line_too_long", "max_streams", "max_buckets", "max_clusters", "flush_failed"} {
		m.dropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.mined, m.dropped, m.evicted, m.streams, m.flushed, m.flushErrors, m.flushSeconds)
	}
	return m
}
