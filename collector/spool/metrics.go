package spool

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/promutil"
)

// Reasons of vigil_collector_spool_forward_errors_total.
const (
	reasonTimeout  = "timeout"   // the downstream did not acknowledge in time (Kafka down or slow)
	reasonFull     = "full"      // the downstream reported queue.ErrFull
	reasonTooLarge = "too_large" // the downstream can never accept the batch; needs an operator
	reasonClosed   = "closed"    // the downstream producer was closed
	reasonError    = "error"     // any other downstream error
	reasonCommit   = "commit"    // the batch was acknowledged but its spool position could not be committed
)

var reasons = []string{reasonTimeout, reasonFull, reasonTooLarge, reasonClosed, reasonError, reasonCommit}

type metrics struct {
	spooledBytes     prometheus.Gauge
	spooledBatches   prometheus.Gauge
	maxBytes         prometheus.Gauge
	forwardedBatches prometheus.Counter
	forwardedBytes   prometheus.Counter
	forwardErrors    *prometheus.CounterVec
	forwardLatency   prometheus.Histogram
	oldestAge        *ageCollector
	laneBatchesVec   *prometheus.GaugeVec
	laneBytesVec     *prometheus.GaugeVec
	laneBatches      [Grades]prometheus.Gauge
	laneBytes        [Grades]prometheus.Gauge
}

// newMetrics creates the spool's metrics and registers them on reg if it is
// not nil. A metric that is already registered (the spool reopened in the
// same process) is reused rather than reported as an error, as the disk
// queue does; the age gauge is pointed at the new spool.
func newMetrics(reg prometheus.Registerer, oldest *atomic.Int64) (*metrics, error) {
	const ns, sub = "vigil", "collector_spool"
	m := &metrics{
		spooledBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "bytes",
			Help: "Bytes of batches written to the spool and not yet forwarded, record framing included; Publish answers ErrFull at vigil_collector_spool_max_bytes.",
		}),
		spooledBatches: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "batches",
			Help: "Batches written to the spool and not yet forwarded.",
		}),
		maxBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "max_bytes",
			Help: "The spool's bound (--collector.spool.max-bytes).",
		}),
		forwardedBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "forwarded_batches_total",
			Help: "Batches acknowledged by the downstream queue (Kafka), forwards again after a restart included.",
		}),
		forwardedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "forwarded_bytes_total",
			Help: "Value bytes of the batches acknowledged by the downstream queue.",
		}),
		forwardErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "forward_errors_total",
			Help: "Failed attempts to forward a batch (each is retried), by reason: timeout, full, too_large, closed, error, commit.",
		}, []string{"reason"}),
		forwardLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "forward_latency_seconds",
			Help:    "Time from a batch's Publish into the spool to its acknowledgement by the downstream queue.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12), // 1 ms to 70 min
		}),
		laneBatchesVec: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "lane_batches",
			Help: "Batches written to the spool and not yet forwarded, by the grade of the lane they wait in (1 is forwarded first).",
		}, []string{"grade"}),
		laneBytesVec: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "lane_bytes",
			Help: "Bytes of batches written to the spool and not yet forwarded, by the grade of their lane, counted as vigil_collector_spool_bytes.",
		}, []string{"grade"}),
		oldestAge: &ageCollector{desc: prometheus.NewDesc(
			prometheus.BuildFQName(ns, sub, "oldest_batch_age_seconds"),
			"Age of the oldest batch not yet forwarded (since its Publish into the spool); 0 when the spool is empty.",
			nil, nil)},
	}
	m.oldestAge.src.Store(oldest)
	for _, r := range reasons {
		m.forwardErrors.WithLabelValues(r)
	}
	defer func() {
		for g := range Grades {
			m.laneBatches[g] = m.laneBatchesVec.WithLabelValues(strconv.Itoa(g + 1))
			m.laneBytes[g] = m.laneBytesVec.WithLabelValues(strconv.Itoa(g + 1))
		}
	}()
	if reg == nil {
		return m, nil
	}
	var err error
	m.spooledBytes = promutil.Register(reg, m.spooledBytes, &err)
	m.spooledBatches = promutil.Register(reg, m.spooledBatches, &err)
	m.maxBytes = promutil.Register(reg, m.maxBytes, &err)
	m.forwardedBatches = promutil.Register(reg, m.forwardedBatches, &err)
	m.forwardedBytes = promutil.Register(reg, m.forwardedBytes, &err)
	m.forwardErrors = promutil.Register(reg, m.forwardErrors, &err)
	m.forwardLatency = promutil.Register(reg, m.forwardLatency, &err)
	m.laneBatchesVec = promutil.Register(reg, m.laneBatchesVec, &err)
	m.laneBytesVec = promutil.Register(reg, m.laneBytesVec, &err)
	if age := promutil.Register(reg, m.oldestAge, &err); age != m.oldestAge {
		age.src.Store(oldest)
		m.oldestAge = age
	}
	if err != nil {
		return nil, fmt.Errorf("cannot register spool metrics: %w", err)
	}
	return m, nil
}

// ageCollector reports the age of the oldest spooled batch at scrape time
// from the enqueue time in src (Unix ns, 0 when the spool is empty). src is
// swapped when the spool is reopened with the same registerer.
type ageCollector struct {
	desc *prometheus.Desc
	src  atomic.Pointer[atomic.Int64]
}

func (a *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *ageCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, a.value())
}

func (a *ageCollector) value() float64 {
	ns := a.src.Load().Load()
	if ns == 0 {
		return 0
	}
	return max(0, time.Since(time.Unix(0, ns)).Seconds())
}

// takeOver returns a registerer that registers on reg, replacing a
// collector already registered under the same descriptors: the breaker
// and retry window of a spool reopened in the same process (a test, a
// reload) take over the series of the closed one, whose counters start
// again from zero. Nil stays nil.
func takeOver(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return takeOverRegisterer{reg}
}

type takeOverRegisterer struct{ prometheus.Registerer }

func (r takeOverRegisterer) Register(c prometheus.Collector) error {
	err := r.Registerer.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		r.Registerer.Unregister(are.ExistingCollector)
		err = r.Registerer.Register(c)
	}
	return err
}

func (r takeOverRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}
