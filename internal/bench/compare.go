package bench

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// figure is one throughput a benchmark measured.
type figure struct {
	name  string
	value float64
}

// result is one run's throughputs and the load average after its load
// phase.
type result interface {
	figures() []figure
	loadAverage() string
}

// printComparison prints the table of --bench.security=compare: each
// throughput with security off and on (the median of the rounds, each
// round's value with the load average beside it), and on / off.
func printComparison[R result](out io.Writer, title string, rounds int, modes []*security, results map[*security][]R) {
	fmt.Fprintf(out, "# Security on vs off — %s; %d round(s), off then on; %d cores\n\n", title, rounds, runtime.NumCPU())
	fmt.Fprintf(out, "| measure | %s | %s | on / off |\n|---|---|---|---|\n", modes[0].name, modes[1].name)
	off, on := results[modes[0]], results[modes[1]]
	for i, f := range off[0].figures() {
		a, ma := column(off, i)
		b, mb := column(on, i)
		fmt.Fprintf(out, "| %s | %s | %s | %.3f (%+.1f %%) |\n", f.name, a, b, mb/ma, 100*(mb/ma-1))
	}
	fmt.Fprintln(out)
}

// column returns the i-th figure of every run, each with its load
// average, then the median; and the median.
func column[R result](runs []R, i int) (string, float64) {
	var vals []float64
	var cells []string
	for _, r := range runs {
		v := r.figures()[i].value
		vals = append(vals, v)
		cells = append(cells, fmt.Sprintf("%s (load %s)", num(v), r.loadAverage()))
	}
	sort.Float64s(vals)
	med := vals[len(vals)/2]
	if len(vals)%2 == 0 {
		med = (vals[len(vals)/2-1] + vals[len(vals)/2]) / 2
	}
	if len(runs) == 1 {
		return cells[0], med
	}
	return fmt.Sprintf("**%s** median: %s", num(med), strings.Join(cells, ", ")), med
}

// num formats a figure: whole above 100, one decimal below.
func num(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// selfCPU returns the CPU seconds this process (the load generator) has
// used so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
}

// throughput is what one run of `vigil bench logs` or `vigil bench traces`
// measured: records a second accepted and until queryable, the CPU seconds
// per million records of the daemon (from the first request until every
// record was queryable) and of the load generator (this process), and the
// load average when they were taken.
type throughput struct {
	accepted, queryable, cpu, clientCPU float64
	load                                string
	names                               [4]string // of the four figures, in that order
}

// measured is the throughput of n records accepted in accepted and
// queryable in queryable, for the CPU seconds the daemon and this process
// spent meanwhile.
func measured(n int, accepted, queryable time.Duration, daemonCPU, selfCPU float64, names [4]string) throughput {
	return throughput{accepted: float64(n) / accepted.Seconds(), queryable: float64(n) / queryable.Seconds(),
		cpu: daemonCPU / float64(n) * 1e6, clientCPU: selfCPU / float64(n) * 1e6, load: loadAvg(), names: names}
}

func (r throughput) figures() []figure {
	return []figure{{r.names[0], r.accepted}, {r.names[1], r.queryable}, {r.names[2], r.cpu}, {r.names[3], r.clientCPU}}
}

func (r throughput) loadAverage() string { return r.load }
