package spanstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	written, duplicates, bytes, truncated, dropped prometheus.Counter
	spans                                          prometheus.Gauge
}

func newMetrics() metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "spanstore", Name: name, Help: help})
	}
	return metrics{
		written:    c("spans_written_total", "Spans written to the embedded span store."),
		duplicates: c("spans_duplicate_total", "Spans skipped because their trace id and span id were already stored."),
		bytes:      c("written_bytes_total", "Bytes appended to span files."),
		truncated:  c("truncated_bytes_total", "Bytes of torn or corrupt tails cut off at open."),
		dropped:    c("days_dropped_total", "Day partitions dropped by retention."),
		spans: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "spanstore", Name: "spans",
			Help: "Spans held by the embedded span store."}),
	}
}

func (m metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.written, m.duplicates, m.bytes, m.truncated, m.dropped, m.spans} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
