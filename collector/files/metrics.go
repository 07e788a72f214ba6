package files

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	linesRead   prometheus.Counter
	bytesRead   prometheus.Counter
	truncated   prometheus.Counter
	rotations   *prometheus.CounterVec
	watched     prometheus.Gauge
	sinkErrors  prometheus.Counter
	sinkRetries prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "vigil", Subsystem: "collector_files", Name: name, Help: help}
	}
	m := &metrics{
		linesRead: prometheus.NewCounter(opts("lines_read_total", "Complete lines read from log files.")),
		bytesRead: prometheus.NewCounter(opts("bytes_read_total", "Bytes read from log files.")),
		truncated: prometheus.NewCounter(opts("truncated_lines_total", "Records cut at the maximum line length.")),
		rotations: prometheus.NewCounterVec(opts("rotations_total",
			"Rotations detected, by kind: rename (the file moved away from its path) or truncate (content replaced in place, copytruncate)."),
			[]string{"kind"}),
		watched: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "collector_files",
			Name: "files_watched", Help: "Files open for tailing, including rotated files being drained."}),
		sinkErrors:  prometheus.NewCounter(opts("sink_errors_total", "Batches the sink did not accept.")),
		sinkRetries: prometheus.NewCounter(opts("sink_retries_total", "Batches handed to the sink again after an error.")),
	}
	m.rotations.WithLabelValues("rename")
	m.rotations.WithLabelValues("truncate")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.linesRead, m.bytesRead, m.truncated, m.rotations, m.watched, m.sinkErrors, m.sinkRetries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cannot register file tailer metrics: %w", err)
		}
	}
	return m, nil
}
