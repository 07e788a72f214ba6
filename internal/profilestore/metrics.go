package profilestore

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	written           prometheus.Counter
	duplicates        prometheus.Counter
	rejected          prometheus.Counter
	tooOld            prometheus.Counter
	partitionsDropped prometheus.Counter

	all []prometheus.Collector
	reg prometheus.Registerer
}

func newMetrics() *metrics {
	const ns, sub = "vigil", "profilestore"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	return &metrics{
		written:           counter("profiles_written_total", "Profiles written to the profile store."),
		duplicates:        counter("duplicate_profiles_skipped_total", "Profiles skipped because a profile with the same id is stored."),
		rejected:          counter("rejected_profiles_total", "Profiles refused because their pprof bytes do not decode or exceed the size limit."),
		tooOld:            counter("expired_profiles_skipped_total", "Profiles skipped because their day is already past retention."),
		partitionsDropped: counter("partitions_removed_total", "Day partitions removed by retention."),
	}
}

func (m *metrics) register(reg prometheus.Registerer, s *Store) error {
	m.all = []prometheus.Collector{m.written, m.duplicates, m.rejected, m.tooOld, m.partitionsDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "profilestore", Name: "disk_bytes", Help: "Bytes of the profile store's partition files."},
			func() float64 { return float64(s.DiskStats().DiskBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "profilestore", Name: "profiles", Help: "Profiles stored."},
			func() float64 { return float64(s.DiskStats().Profiles) }),
	}
	for i, c := range m.all {
		if err := reg.Register(c); err != nil {
			for _, r := range m.all[:i] {
				reg.Unregister(r)
			}
			return errors.Join(errors.New("cannot register profile store metrics"), err)
		}
	}
	m.reg = reg
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
