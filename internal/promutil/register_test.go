package promutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterReusesExisting(t *testing.T) {
	reg := prometheus.NewRegistry()
	var err error
	a := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}), &err)
	b := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}), &err)
	if err != nil || a != b {
		t.Fatalf("second registration: got %v, same collector %v; want the first collector back", err, a == b)
	}
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other help"}), &err)
	if err == nil {
		t.Errorf("a different collector under a registered name: got no error")
	}
}
