package dump

import "github.com/prometheus/client_golang/prometheus"

// Drop reasons of vigil_sdk_dumps_dropped_total.
const (
	dropSpoolFull  = "spool_full"  // the oldest report made room for a new one
	dropTooLarge   = "too_large"   // one report larger than the spool
	dropRejected   = "rejected"    // the intake refused it for good (4xx)
	dropSpoolError = "spool_error" // it could not be written to disk
	dropUnreadable = "unreadable"  // a spooled file could not be read back
)

type metrics struct {
	captured   *prometheus.CounterVec
	spooled    prometheus.GaugeFunc
	spoolBytes prometheus.GaugeFunc
	sent       prometheus.Counter
	dropped    *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

func newMetrics(s *spool) *metrics {
	m := &metrics{
		captured: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_sdk_dumps_captured_total",
			Help: "Reports built, by kind: panic (recovered) or crash (a fatal error or unrecovered panic of a previous run).",
		}, []string{"kind"}),
		spooled: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_sdk_dumps_spooled",
			Help: "Reports waiting in the on-disk spool for the intake.",
		}, func() float64 { n, _ := s.stats(); return float64(n) }),
		spoolBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_sdk_dumps_spool_bytes",
			Help: "Size of the reports waiting in the on-disk spool.",
		}, func() float64 { _, b := s.stats(); return float64(b) }),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_sdk_dumps_sent_total",
			Help: "Reports the intake accepted.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_sdk_dumps_dropped_total",
			Help: "Reports lost, by reason: spool_full, too_large, rejected, spool_error, unreadable.",
		}, []string{"reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_sdk_dumps_send_failures_total",
			Help: "Delivery attempts that failed and will be retried, by reason: network, server, rate_limited.",
		}, []string{"reason"}),
	}
	for _, r := range []string{dropSpoolFull, dropTooLarge, dropRejected, dropSpoolError, dropUnreadable} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"network", "server", "rate_limited"} {
		m.failures.WithLabelValues(r)
	}
	for _, k := range []string{"panic", "crash"} {
		m.captured.WithLabelValues(k)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.captured, m.spooled, m.spoolBytes, m.sent, m.dropped, m.failures}
}
