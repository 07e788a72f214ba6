package dumpstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	written, duplicates prometheus.Counter
	events, issues      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "dumpstore", Name: name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "dumpstore", Name: name, Help: help})
	}
	m := &metrics{
		written:    c("events_written_total", "Dump events written to the embedded dump store."),
		duplicates: c("events_duplicate_total", "Dump events skipped because their event_id was already stored."),
		events:     g("events", "Dump events held by the embedded dump store."),
		issues:     g("issues", "Issues held by the embedded dump store."),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.duplicates, m.events, m.issues)
	}
	return m
}
