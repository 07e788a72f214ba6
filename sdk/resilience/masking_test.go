package resilience

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBalancerMasking(t *testing.T) {
	clk := newFakeClock()
	reg := prometheus.NewRegistry()
	b, err := NewBalancer(MaskConfig{EjectAfter: 2, EjectFor: time.Second, MaxEjectFor: 4 * time.Second, RampFor: 10 * time.Second,
		MinWeight: 0.1, Name: "b", Registerer: reg, Now: clk.Now}, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	counts := func(n int, fail string) map[string]int {
		m := map[string]int{}
		for range n {
			a, probe, err := b.Pick()
			if err != nil {
				t.Fatal(err)
			}
			if probe {
				a = "probe:" + a
			}
			m[a]++
			b.Report(a[len(a)-1:], a[len(a)-1:] != fail)
		}
		return m
	}
	if m := counts(300, ""); m["a"] != 100 || m["b"] != 100 || m["c"] != 100 {
		t.Fatalf("healthy round robin: %v; want 100 each", m)
	}
	// c fails: ejected after 2 failures in a row
	if m := counts(300, "c"); m["c"] != 2 {
		t.Fatalf("with c failing: %v; want c picked twice then masked", m)
	}
	if v := testutil.ToFloat64(b.ejections.WithLabelValues("c")); v != 1 {
		t.Fatalf("ejections of c = %v; want 1", v)
	}
	// 1s later one probe; it fails: ejected for 2s now
	clk.Add(time.Second)
	if m := counts(10, "c"); m["probe:c"] != 1 || m["c"] != 0 {
		t.Fatalf("after 1s: %v; want one probe of c", m)
	}
	clk.Add(time.Second)
	if m := counts(10, "c"); m["probe:c"] != 0 {
		t.Fatalf("1s into a 2s ejection: %v; want no probe", m)
	}
	// the probe succeeds: c is back with a small weight, ramped to 1 over 10s
	clk.Add(time.Second)
	m := counts(1000, "")
	if m["probe:c"] != 1 || m["c"] < 40 || m["c"] > 60 {
		t.Fatalf("just re-admitted: %v; want a probe then about 10%% weight (≈48 of 1000)", m)
	}
	clk.Add(5 * time.Second)
	if m := counts(1000, ""); m["c"] < 195 || m["c"] > 235 {
		t.Fatalf("half-way through the ramp: %v; want c ≈ 0.55/2.55 of 1000 ≈ 216", m)
	}
	clk.Add(5 * time.Second)
	if m := counts(300, ""); m["c"] != 100 {
		t.Fatalf("after the ramp: %v; want 100 each", m)
	}
	// never more than half the instances masked
	counts(30, "a")
	if m := counts(30, "b"); m["b"] == 0 {
		t.Fatalf("with a masked, b failing: %v; want b kept (MaxEjected)", m)
	}
}
