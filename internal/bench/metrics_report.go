package bench

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// report prints the figures of every server side by side, with the ratio
// Vigil ÷ Prometheus when both ran.
func (b *metricsBench) report() {
	head := "| measure |"
	sep := "|---|"
	for _, r := range b.results {
		head += " " + r.name + " |"
		sep += "---|"
	}
	both := len(b.results) == 2 && b.results[0].name != b.results[1].name
	if both {
		head += " ratio " + b.results[0].name + " ÷ " + b.results[1].name + " |"
		sep += "---|"
	}
	fmt.Fprintln(b.out, head)
	fmt.Fprintln(b.out, sep)
	row := func(measure string, val func(r *metricsResult) float64, format func(float64) string) {
		line := "| " + measure + " |"
		var vs []float64
		for _, r := range b.results {
			v := val(r)
			vs = append(vs, v)
			line += " " + format(v) + " |"
		}
		if both {
			if vs[1] != 0 {
				line += fmt.Sprintf(" %.2f |", vs[0]/vs[1])
			} else {
				line += " – |"
			}
		}
		fmt.Fprintln(b.out, line)
	}
	text := func(measure string, val func(r *metricsResult) string) {
		line := "| " + measure + " |"
		for _, r := range b.results {
			line += " " + val(r) + " |"
		}
		if both {
			line += " |"
		}
		fmt.Fprintln(b.out, line)
	}
	num := func(f string) func(float64) string { return func(v float64) string { return fmt.Sprintf(f, v) } }
	ms := func(v float64) string { return fmt.Sprintf("%.1f ms", v*1e3) }
	text("load average (1, 5, 15 min) before → after", func(r *metricsResult) string { return r.load[0] + " → " + r.load[1] })
	row("samples/s appended (prometheus_tsdb_head_samples_appended_total)", func(r *metricsResult) float64 { return r.samplesPerSec }, num("%.0f"))
	row("head series", func(r *metricsResult) float64 { return r.headSeries }, num("%.0f"))
	row("seconds until every series was in the head", func(r *metricsResult) float64 { return r.seriesAfter.Seconds() }, num("%.1f"))
	row("targets up", func(r *metricsResult) float64 { return r.up }, num("%.0f"))
	row("scrape duration, mean over targets", func(r *metricsResult) float64 { return r.scrapeAvg }, ms)
	row("scrape duration, slowest target", func(r *metricsResult) float64 { return r.scrapeMax }, ms)
	row("CPU cores used while ingesting", func(r *metricsResult) float64 { return r.cpuCores }, num("%.2f"))
	row("CPU seconds per million samples", func(r *metricsResult) float64 { return r.cpuPerMillion }, num("%.2f"))
	row("peak RSS", func(r *metricsResult) float64 { return float64(r.peakRSS) / 1e6 }, num("%.0f MB"))
	if !b.dashboard {
		return
	}
	row("samples of recorded series back-filled by remote write", func(r *metricsResult) float64 { return float64(r.backfilled) }, num("%.0f"))
	if b.rules {
		row("seconds until the golden rules had recorded every level", func(r *metricsResult) float64 { return r.rulesReadyAfter.Seconds() }, num("%.0f"))
	}
	for i, rng := range b.ranges {
		step := grafanaStep(rng)
		for j, q := range b.queries {
			name := fmt.Sprintf("%s range, step %s: `%s` p50 / p99", fmtRange(rng), step, strings.ReplaceAll(q.expr, "|", `\|`))
			if q.label != "" {
				name = fmt.Sprintf("%s range: label values of %s for `%s` p50 / p99", fmtRange(rng), q.label, q.expr)
			}
			text(name, func(r *metricsResult) string {
				l := r.dash[i]
				s := fmt.Sprintf("%s / %s", fmtDur(l.perQuery[j][0]), fmtDur(l.perQuery[j][1]))
				if q.label == "" {
					s += fmt.Sprintf(" (%d series)", l.series[j])
				}
				return s
			})
		}
		text(fmt.Sprintf("%s range: whole dashboard refresh (%d requests, 6 at a time) p50 / p99", fmtRange(rng), len(b.queries)), func(r *metricsResult) string {
			return fmt.Sprintf("%s / %s", fmtDur(r.dash[i].refresh[0]), fmtDur(r.dash[i].refresh[1]))
		})
		row(fmt.Sprintf("%s range: worst p99 of one query", fmtRange(rng)), func(r *metricsResult) float64 {
			var worst time.Duration
			for _, p := range r.dash[i].perQuery {
				worst = max(worst, p[1])
			}
			return worst.Seconds()
		}, ms)
	}
}

func fmtRange(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1e3) }

// runCmd runs a program and returns its combined output.
func runCmd(bin string, args ...string) ([]byte, error) {
	return exec.Command(bin, args...).CombinedOutput() // #nosec G204 -- the benchmark runs the binaries the operator named (vigil, prometheus)
}
