package esdumpstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	indexed, duplicate, rejected, folded, conflicts, itemRetries, deletedIdx prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "es_dumps", Name: name, Help: help})
	}
	m := &metrics{
		indexed:     c("indexed_total", "Dump event documents newly created in Elasticsearch."),
		duplicate:   c("duplicate_total", "Dump event documents skipped because their event id was already stored (redelivery, or another ingester)."),
		rejected:    c("rejected_total", "Dump event documents Elasticsearch refused permanently; each is handed back to the ingester, which dead-letters it."),
		folded:      c("issue_updates_total", "Issue documents written (one per issue per write)."),
		conflicts:   c("issue_conflicts_total", "Issue writes that lost to another writer (version conflict) and were folded again."),
		itemRetries: c("item_retries_total", "Bulk items resent after a 429 or 5xx item status."),
		deletedIdx:  c("deleted_indices_total", "Daily dump event indices deleted by retention."),
	}
	if reg != nil {
		reg.MustRegister(m.indexed, m.duplicate, m.rejected, m.folded, m.conflicts, m.itemRetries, m.deletedIdx)
	}
	return m
}
