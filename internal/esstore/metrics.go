package esstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	bulkRequests  *prometheus.CounterVec // by outcome: ok, error
	docsIndexed   prometheus.Counter
	docsDuplicate prometheus.Counter
	docsRejected  *prometheus.CounterVec // by Elasticsearch error type
	itemRetries   prometheus.Counter
	bulkSeconds   prometheus.Histogram
	searchSeconds *prometheus.HistogramVec // by operation
	deletedIdx    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "vigil", "es"
	m := &metrics{
		bulkRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "bulk_requests_total",
			Help: "Bulk requests sent to Elasticsearch, by outcome (ok: the request was answered with per-item results; error: transport failure or whole-request error status).",
		}, []string{"outcome"}),
		docsIndexed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "docs_indexed_total",
			Help: "Log documents newly created in Elasticsearch.",
		}),
		docsDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "docs_duplicate_total",
			Help: "Log documents skipped because a document with the same id already existed (redelivery).",
		}),
		docsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "docs_rejected_total",
			Help: "Log documents Elasticsearch rejected permanently, by its error type; each is handed back to the ingester, which dead-letters it.",
		}, []string{"reason"}),
		itemRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "item_retries_total",
			Help: "Bulk items resent after a 429 or 5xx item status.",
		}),
		bulkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "bulk_duration_seconds",
			Help:    "Duration of one bulk request, response parsing included.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		searchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "search_duration_seconds",
			Help:    "Duration of one search or aggregation request, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}, []string{"op"}),
		deletedIdx: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "retention_deleted_indices_total",
			Help: "Daily indices deleted by Vigil's own retention (clusters without ILM).",
		}),
	}
	m.bulkRequests.WithLabelValues("ok")
	m.bulkRequests.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(m.bulkRequests, m.docsIndexed, m.docsDuplicate, m.docsRejected,
			m.itemRetries, m.bulkSeconds, m.searchSeconds, m.deletedIdx)
	}
	return m
}
