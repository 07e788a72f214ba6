//go:build unix

package patterns

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// BenchmarkMinerObserve measures mining at ingest per line: 10,000-line
// batches over 50 services and 3 levels of one access-log template whose
// path and duration vary.
func BenchmarkMinerObserve(b *testing.B) {
	lines := make([]model.LogRecord, 10_000)
	for i := range lines {
		lines[i] = rec("svc-"+strconv.Itoa(i%50), []string{"info", "warn", "error"}[i%3],
			"level=info msg=\"request served\" method=GET path=/api/v1/users/"+strconv.Itoa(i*7919%100000)+" status=200 took="+strconv.Itoa(i%900)+"ms",
			t0+int64(i)*1e6)
	}
	m := NewMiner(Options{})
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	n := 0
	for b.Loop() {
		m.Observe(lines)
		n += len(lines)
		if n >= 1_000_000 {
			m.take()
			n = 0
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
	// CPU time: on a shared machine wall time also counts the time other
	// processes held the cores.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*len(lines)), "cpu-ns/line")
}

// cpuTime returns the CPU time the process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
