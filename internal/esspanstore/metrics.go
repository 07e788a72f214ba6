package esspanstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	spansIndexed   prometheus.Counter
	spansDuplicate prometheus.Counter
	spansRejected  prometheus.Counter
	depWriteErrors prometheus.Counter
	// parentUpdateFailures counts children whose parent service could not
	// be set; the query-time join still counts their calls.
	parentUpdateFailures prometheus.Counter
	itemRetries          prometheus.Counter
	deletedIdx           prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "vigil", "es_spans"
	m := &metrics{
		spansIndexed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "indexed_total",
			Help: "Span documents newly created in Elasticsearch."}),
		spansDuplicate: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "duplicate_total",
			Help: "Span documents skipped because their trace id + span id was already stored (redelivery)."}),
		spansRejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejected_total",
			Help: "Span documents Elasticsearch refused permanently; each is handed back to the ingester, which dead-letters it."}),
		parentUpdateFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "parent_update_failures_total",
			Help: "Spans written before their parent whose parent service could not be added later; their calls are joined at query time."}),
		depWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dependency_write_errors_total",
			Help: "Failed writes of the daily dependency document; the next interval writes it again."}),
		itemRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "item_retries_total",
			Help: "Bulk items resent after a 429 or 5xx item status."}),
		deletedIdx: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "deleted_indices_total",
			Help: "Daily span and service indices deleted by retention."}),
	}
	if reg != nil {
		reg.MustRegister(m.spansIndexed, m.spansDuplicate, m.spansRejected, m.depWriteErrors, m.parentUpdateFailures, m.itemRetries, m.deletedIdx)
	}
	return m
}
