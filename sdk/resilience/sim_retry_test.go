package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// stormResult is per second of simulated time.
type stormResult struct {
	retries  []float64 // retry attempts per second
	success  []float64 // % of the calls of the second that succeeded
	budget   []float64 // the window's budget f(i) (adaptive only)
	inOutage float64   // retry attempts during the outage / base requests then
}

// simRetryStorm: clients make 1000 calls per second (one per ms) for 60 s
// of simulated time through Do with up to 3 retries; the backend fails
// 0.5% of attempts at random, and every attempt from 20 s to 35 s. With
// fixed retries every failed call is retried 3 times; with the adaptive
// window only within the period's budget.
func simRetryStorm(t *testing.T, adaptive bool) stormResult {
	const (
		secs                 = 60
		outFrom, outTo       = 20, 35
		callsPerSec          = 1000
		retriesPerFailedCall = 3
	)
	clk := newFakeClock()
	base := time.Unix(1_800_000_000, 0)
	clk.Set(base)
	var w *RetryWindow
	if adaptive {
		var err error
		if w, err = NewRetryWindow(RetryWindowConfig{Period: time.Second, Name: "storm", Now: clk.Now}); err != nil {
			t.Fatal(err)
		}
	}
	r := &Retry{Window: w, MaxAttempts: 1 + retriesPerFailedCall, Backoff: Backoff{},
		Sleep: func(context.Context, time.Duration) error { return nil }} // retries within the same ms
	rng := rand.New(rand.NewPCG(3, 4))
	boom := errors.New("backend failed")
	res := stormResult{retries: make([]float64, secs), success: make([]float64, secs), budget: make([]float64, secs)}
	outRetries := 0
	for i := range secs * callsPerSec {
		at := time.Duration(i) * time.Second / callsPerSec
		clk.Set(base.Add(at))
		s := int(at / time.Second)
		down := s >= outFrom && s < outTo
		n := 0
		_, err := Do(context.Background(), r, func(context.Context) (struct{}, error) {
			n++
			if down || rng.Float64() < 0.005 {
				return struct{}{}, boom
			}
			return struct{}{}, nil
		})
		res.retries[s] += float64(n - 1)
		if down {
			outRetries += n - 1
		}
		if err == nil {
			res.success[s]++
		}
		if w != nil && i%callsPerSec == callsPerSec-1 {
			res.budget[s] = float64(w.Budget())
		}
	}
	for i := range res.success {
		res.success[i] = 100 * res.success[i] / callsPerSec
	}
	res.inOutage = float64(outRetries) / float64((outTo-outFrom)*callsPerSec)
	return res
}

// TestSimRetryStorm: fixed retries multiply the load on a failing
// backend by 4; the adaptive window keeps retry traffic within a few
// percent of the base load, and grows back after the failure.
func TestSimRetryStorm(t *testing.T) {
	fixed, adaptive := simRetryStorm(t, false), simRetryStorm(t, true)
	t.Logf("retry traffic during the outage, as a share of the base load: fixed %.1f%%, adaptive %.2f%%; success in the 10 s before: fixed %.2f%% adaptive %.2f%%, in the 10 s after recovery: fixed %.2f%% adaptive %.2f%%; adaptive budget before %v, at the end of the outage %v, 25 s after %v",
		100*fixed.inOutage, 100*adaptive.inOutage, avg(fixed.success, 10, 20), avg(adaptive.success, 10, 20), avg(fixed.success, 36, 46), avg(adaptive.success, 36, 46),
		adaptive.budget[19], adaptive.budget[34], adaptive.budget[59])
	if fixed.inOutage < 2.9 {
		t.Errorf("fixed retries: retry traffic %.0f%% of the base load during the outage; want ≈ 300%%", 100*fixed.inOutage)
	}
	if adaptive.inOutage > 0.05 {
		t.Errorf("adaptive window: retry traffic %.2f%% of the base load during the outage; want ≤ 5%%", 100*adaptive.inOutage)
	}
	if s := avg(adaptive.success, 36, 46); s < 99.8 {
		t.Errorf("adaptive window: %.2f%% success after the failure; want ≥ 99.8%% (recovered: 0.5%% of single attempts fail)", s)
	}
	if adaptive.budget[59] < 4 || adaptive.budget[34] != 1 {
		t.Errorf("adaptive budget: %v at the end of the outage, %v at the end; want 1, then grown back to ≥ 4", adaptive.budget[34], adaptive.budget[59])
	}
	marks := []mark{{20, "backend fails"}, {35, "recovers"}}
	chart{file: "retry-load.svg", title: "Retry traffic with a failing backend (base load 1000 calls/s)", xLabel: "time (s)", yLabel: "retry attempts per second",
		xMax: 60, yMax: 3200, marks: marks, series: []series{
			{name: "3 fixed retries", color: "#d62728", pts: pts(fixed.retries)},
			{name: "adaptive window", color: "#2ca02c", pts: pts(adaptive.retries)},
		}}.write(t)
	chart{file: "retry-budget.svg", title: "Adaptive retry window: budget f(i) per 1 s period", xLabel: "time (s)", yLabel: "retries allowed per period",
		xMax: 60, yMax: 20, marks: marks, series: []series{
			{name: "f(i)", color: "#1f77b4", pts: pts(adaptive.budget)},
			{name: "retries made", color: "#2ca02c", dashed: true, pts: pts(adaptive.retries)},
		}}.write(t)
}
