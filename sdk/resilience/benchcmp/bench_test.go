package benchcmp

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// The happy path of each piece: a closed breaker around a succeeding
// call, a limiter with tokens to spare, a retry window recording a
// success. Ours register their metrics, as in production.

func BenchmarkBreaker(b *testing.B) {
	br, err := resilience.NewBreaker(resilience.BreakerConfig{Name: "bench", Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		t, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		br.Done(t, true)
	}
}

func BenchmarkGobreaker(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
	f := func() (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cb.Execute(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGobreakerTwoStep(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
	b.ReportAllocs()
	for b.Loop() {
		done, err := cb.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}

func BenchmarkLimiter(b *testing.B) {
	l, err := resilience.NewLimiter(resilience.LimiterConfig{Rate: 1e12, Burst: 1 << 30, Name: "bench", Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !l.Allow() {
			b.Fatal("no token")
		}
	}
}

func BenchmarkXTimeRate(b *testing.B) {
	l := rate.NewLimiter(rate.Limit(1e12), 1<<30)
	b.ReportAllocs()
	for b.Loop() {
		if !l.Allow() {
			b.Fatal("no token")
		}
	}
}

func BenchmarkRetryWindowRecord(b *testing.B) {
	w, err := resilience.NewRetryWindow(resilience.RetryWindowConfig{Period: time.Second, Name: "bench", Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.Record(true)
	}
}

func BenchmarkNextRetryWindow(b *testing.B) {
	f := 1
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f = resilience.NextRetryWindow(f, f, 1000, 0.99)
		if f > 1<<20 {
			f = 1
		}
	}
}

func BenchmarkBreakerParallel(b *testing.B) {
	br, _ := resilience.NewBreaker(resilience.BreakerConfig{Name: "bench", Registerer: prometheus.NewRegistry()})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, _ := br.Allow()
			br.Done(t, true)
		}
	})
}

func BenchmarkGobreakerParallel(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
	f := func() (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cb.Execute(f)
		}
	})
}

func BenchmarkLimiterParallel(b *testing.B) {
	l, _ := resilience.NewLimiter(resilience.LimiterConfig{Rate: 1e12, Burst: 1 << 30, Name: "bench", Registerer: prometheus.NewRegistry()})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow()
		}
	})
}

func BenchmarkXTimeRateParallel(b *testing.B) {
	l := rate.NewLimiter(rate.Limit(1e12), 1<<30)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow()
		}
	})
}
