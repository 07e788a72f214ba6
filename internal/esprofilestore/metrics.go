package esprofilestore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	written, duplicates, rejected, tooOld, itemRetries, deletedIdx prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "es_profiles", Name: name, Help: help})
	}
	m := &metrics{
		written:     c("indexed_total", "Profile documents newly created in Elasticsearch."),
		duplicates:  c("duplicate_total", "Profiles skipped because their id was already stored (redelivery, or another ingester)."),
		rejected:    c("rejected_total", "Profiles refused (invalid, undecodable pprof, or refused by Elasticsearch); each is handed back to the ingester, which dead-letters it."),
		tooOld:      c("expired_total", "Profiles skipped because their day is already past retention."),
		itemRetries: c("item_retries_total", "Bulk items resent after a 429 or 5xx item status."),
		deletedIdx:  c("deleted_indices_total", "Daily profile indices deleted by retention."),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.duplicates, m.rejected, m.tooOld, m.itemRetries, m.deletedIdx)
	}
	return m
}
