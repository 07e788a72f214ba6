package resilience

import (
	"testing"
	"time"
)

// TestSimDatacenterCutOff: three instances in three datacenters, 1000
// requests per second for 80 s of simulated time; dc-c is cut off from
// 10 s to 40 s (every request to it fails). Round robin without masking
// succeeds 2 times in 3 while it is cut off; with instance masking the
// balancer ejects dc-c after 3 failures and probes it with a doubling
// interval, and re-admits it with a ramped weight after it came back.
func TestSimDatacenterCutOff(t *testing.T) {
	const (
		rate     = 1000 // requests per second
		duration = 80 * time.Second
		cutFrom  = 10 * time.Second
		cutTo    = 40 * time.Second
	)
	start := time.Unix(1_800_000_000, 0)
	down := func(addr string, at time.Duration) bool { return addr == "dc-c" && at >= cutFrom && at < cutTo }

	type result struct {
		okCut, nCut int       // during the cut
		perSec      []float64 // success % per second
		shareC      []float64 // % of the traffic dc-c got, per second
	}
	run := func(masking bool) result {
		clk := newFakeClock()
		clk.Set(start)
		b, err := NewBalancer(MaskConfig{Name: "sim", Now: clk.Now}, "dc-a", "dc-b", "dc-c")
		if err != nil {
			t.Fatal(err)
		}
		var res result
		rr := 0
		secOK, secN, secC := 0, 0, 0
		for i := range int(duration / time.Second * rate) {
			at := time.Duration(i) * time.Second / rate
			clk.Set(start.Add(at))
			var addr string
			if masking {
				addr, _, err = b.Pick()
				if err != nil {
					t.Fatal(err)
				}
			} else {
				addr = []string{"dc-a", "dc-b", "dc-c"}[rr%3]
				rr++
			}
			ok := !down(addr, at)
			if masking {
				b.Report(addr, ok)
			}
			if at >= cutFrom && at < cutTo {
				res.nCut++
				if ok {
					res.okCut++
				}
			}
			secN++
			if ok {
				secOK++
			}
			if addr == "dc-c" {
				secC++
			}
			if secN == rate {
				res.perSec = append(res.perSec, 100*float64(secOK)/rate)
				res.shareC = append(res.shareC, 100*float64(secC)/rate)
				secOK, secN, secC = 0, 0, 0
			}
		}
		return res
	}
	rr, mask := run(false), run(true)
	rrRate := 100 * float64(rr.okCut) / float64(rr.nCut)
	maskRate := 100 * float64(mask.okCut) / float64(mask.nCut)
	t.Logf("success while dc-c is cut off: round robin %.2f%% (%d of %d), masking %.3f%% (%d of %d)", rrRate, rr.okCut, rr.nCut, maskRate, mask.okCut, mask.nCut)
	if rrRate < 66.5 || rrRate > 66.9 {
		t.Errorf("round robin: %.2f%% succeeded; want ≈ 66.7%%", rrRate)
	}
	if maskRate < 99.9 {
		t.Errorf("instance masking: %.3f%% succeeded; want ≥ 99.9%%", maskRate)
	}
	// re-admitted after the cut, and ramped back to a third of the traffic
	last := mask.shareC[len(mask.shareC)-1]
	if last < 32 || last > 34.5 {
		t.Errorf("dc-c's share of the last second: %.1f%%; want ≈ 33.3%% after the ramp", last)
	}
	marks := []mark{{cutFrom.Seconds(), "dc-c cut off"}, {cutTo.Seconds(), "dc-c back"}}
	chart{file: "masking-success.svg", title: "3 datacenters, one cut off 10–40 s: success per second", xLabel: "time (s)", yLabel: "success (%)",
		xMax: duration.Seconds(), yMax: 100, marks: marks, series: []series{
			{name: "round robin", color: "#d62728", pts: pts(rr.perSec)},
			{name: "masking", color: "#2ca02c", pts: pts(mask.perSec)},
		}}.write(t)
	chart{file: "masking-share.svg", title: "Traffic sent to dc-c with masking: ejected, probed, ramped", xLabel: "time (s)", yLabel: "share of requests (%)",
		xMax: duration.Seconds(), yMax: 40, marks: marks, series: []series{
			{name: "round robin", color: "#d62728", dashed: true, pts: pts(rr.shareC)},
			{name: "masking", color: "#2ca02c", pts: pts(mask.shareC)},
		}}.write(t)
}
