package logstore

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	rowsWritten   prometheus.Counter
	duplicates    prometheus.Counter
	tooOld        prometheus.Counter
	blocksWritten prometheus.Counter
	blocksMerged  prometheus.Counter
	blocksScanned prometheus.Counter
	blocksPruned  prometheus.Counter
	corruptBlocks prometheus.Counter
	writeDuration prometheus.Histogram

	all []prometheus.Collector
	reg prometheus.Registerer
}

func newMetrics(s *Store) *metrics {
	const ns, sub = "vigil", "logstore"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		rowsWritten:   counter("rows_written_total", "Rows written to the log store."),
		duplicates:    counter("duplicate_rows_skipped_total", "Rows skipped because a row with the same id was written recently."),
		tooOld:        counter("expired_rows_skipped_total", "Rows skipped because their day is already past retention."),
		blocksWritten: counter("blocks_written_total", "Blocks written from the in-memory head."),
		blocksMerged:  counter("blocks_merged_total", "Small blocks merged into bigger ones."),
		blocksScanned: counter("query_blocks_scanned_total", "Blocks read and scanned by queries."),
		blocksPruned:  counter("query_blocks_skipped_by_bloom_total", "Blocks skipped by queries because their bloom filter excluded a line filter."),
		corruptBlocks: counter("corrupt_blocks_total", "Blocks skipped by queries because they failed their checksum or could not be decoded."),
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "write_duration_seconds",
			Help:    "Duration of Write calls, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	gauge := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help},
			func() float64 { return f(s.Stats()) })
	}
	m.all = []prometheus.Collector{
		m.rowsWritten, m.duplicates, m.tooOld, m.blocksWritten, m.blocksMerged,
		m.blocksScanned, m.blocksPruned, m.corruptBlocks, m.writeDuration,
		gauge("blocks", "Blocks on disk.", func(st Stats) float64 { return float64(st.Blocks) }),
		gauge("disk_bytes", "Bytes the log store takes on disk.", func(st Stats) float64 { return float64(st.DiskBytes) }),
		gauge("partitions", "Day partitions held.", func(st Stats) float64 { return float64(st.Partitions) }),
		gauge("rows", "Rows held, on disk and in memory.", func(st Stats) float64 { return float64(st.Rows) }),
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	for i, c := range m.all {
		if err := r.Register(c); err != nil {
			for _, done := range m.all[:i] {
				r.Unregister(done)
			}
			return errors.Join(errors.New("cannot register log store metrics"), err)
		}
	}
	m.reg = r
	return nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
}
