package resilience

import (
	"testing"
	"time"
)

func TestDynamicTimeout(t *testing.T) {
	d, err := NewDynamicTimeout(TimeoutConfig{Initial: 500 * time.Millisecond, Floor: 20 * time.Millisecond, Ceiling: 400 * time.Millisecond, Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		observe time.Duration // 0: a timeout
		want    time.Duration
	}
	steps := []step{
		{10 * time.Millisecond, 30 * time.Millisecond},    // first sample: avg 10, dev 5 → 10+4·5
		{10 * time.Millisecond, 25 * time.Millisecond},    // dev 3.75 → 10+15
		{10 * time.Millisecond, 21250 * time.Microsecond}, // dev 2.8125
		{10 * time.Millisecond, 20 * time.Millisecond},    // 10+4·2.109 = 18.4 → floor 20
		{0, 40 * time.Millisecond},                        // a spike: elastic ×2
		{0, 80 * time.Millisecond},
		{0, 160 * time.Millisecond},
		{0, 320 * time.Millisecond},
		{0, 400 * time.Millisecond}, // ceiling
		{0, 400 * time.Millisecond},
		{10 * time.Millisecond, 320 * time.Millisecond}, // a latency again: elastic halves, 32 → 16, 20ms × 16
	}
	for i, s := range steps {
		if s.observe == 0 {
			d.ObserveTimeout()
		} else {
			d.Observe(s.observe)
		}
		if got := d.Timeout(); got < s.want-time.Microsecond || got > s.want+time.Microsecond {
			t.Fatalf("step %d: timeout %v; want %v", i, got, s.want)
		}
	}
	for range 10 {
		d.Observe(10 * time.Millisecond)
	}
	if got := d.Timeout(); got != 20*time.Millisecond {
		t.Fatalf("after the spike: timeout %v; want back to the floor 20ms", got)
	}
	if _, err := NewDynamicTimeout(TimeoutConfig{Floor: time.Second, Ceiling: time.Millisecond}); err == nil {
		t.Fatal("Ceiling below Floor accepted")
	}
}
