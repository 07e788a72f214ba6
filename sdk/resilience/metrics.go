package resilience

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// instruments registers one piece's metrics on a caller-given registerer;
// err is the first registration error.
type instruments struct {
	reg prometheus.Registerer
	cl  prometheus.Labels
	err error
}

func newInstruments(reg prometheus.Registerer, name string) *instruments {
	return &instruments{reg: reg, cl: prometheus.Labels{"name": name}}
}

func (f *instruments) register(c prometheus.Collector) {
	if f.reg == nil {
		return
	}
	if err := f.reg.Register(c); err != nil && f.err == nil {
		f.err = err
	}
}

func (f *instruments) counter(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.cl}, labels)
	f.register(v)
	return v
}

func (f *instruments) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.cl}, labels)
	f.register(v)
	return v
}

// gradeLabels are the label values of grades 1…4.
var gradeLabels = [5]string{"0", "1", "2", "3", "4"}

// gradeIndex clamps a grade to 1…4: an unknown grade is treated as 4, the
// first to be shed.
func gradeIndex(g int) int {
	if g < 1 || g > 4 {
		return 4
	}
	return g
}

func gradeLabel(g int) string { return gradeLabels[gradeIndex(g)] }

func nowFunc(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}
