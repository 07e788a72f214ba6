package resilience

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Happy-path costs of the pieces without a well-known counterpart; the
// breaker, limiter and retry window are measured against sony/gobreaker
// and golang.org/x/time/rate in ./benchcmp (its own module).

func BenchmarkDynamicTimeout(b *testing.B) {
	d, _ := NewDynamicTimeout(TimeoutConfig{Name: "bench", Registerer: prometheus.NewRegistry()})
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Timeout()
		d.Observe(20 * time.Millisecond)
	}
}

func BenchmarkGuardUncontended(b *testing.B) {
	g, _ := NewGuard(GuardConfig{Name: "bench", Registerer: prometheus.NewRegistry()})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if w, err := g.Enter(now, now, time.Time{}, 1); w != nil || err != nil {
			b.Fatal("not admitted")
		}
		g.Leave(now, now)
	}
}

func BenchmarkLanesPushPop(b *testing.B) {
	l, _ := NewLanes[int](LanesConfig{Capacity: 1024, Name: "bench", Registerer: prometheus.NewRegistry()})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Push(1+i%4, i)
		l.TryPop()
	}
}

func BenchmarkBalancerPick(b *testing.B) {
	bl, _ := NewBalancer(MaskConfig{Name: "bench", Registerer: prometheus.NewRegistry()}, "a:1", "b:1", "c:1")
	b.ReportAllocs()
	for b.Loop() {
		a, _, _ := bl.Pick()
		bl.Report(a, true)
	}
}
