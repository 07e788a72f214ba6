package golden

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// processName names the process rules' file and group.
const processName = "process"

// File is one generated rule file.
type File struct {
	// Name is the file's base name, e.g. golden_vigil_http.rules.yml.
	Name   string
	Groups rulefmt.RuleGroups
}

// Generate builds the rule files of a configuration from ParseConfig,
// LoadConfig or DefaultConfig: per convention one file with the
// golden-signal group and, unless no_slo, the burn-rate group; one file
// for the process saturation metrics.
func Generate(c *Config) []File {
	var files []File
	for i := range c.Conventions {
		cv := &c.Conventions[i]
		g := newGen(c, cv.Labels, cv.Selector)
		f := File{Name: "golden_" + cv.Name + ".rules.yml"}
		f.Groups.Groups = append(f.Groups.Groups, rulefmt.RuleGroup{
			Name: "golden_" + cv.Name, Interval: c.Interval, Rules: g.golden(cv),
		})
		if !c.SLO.Disabled && !cv.NoSLO && len(c.SLO.Objectives) > 0 {
			f.Groups.Groups = append(f.Groups.Groups, rulefmt.RuleGroup{
				Name: "slo_" + cv.Name, Interval: c.SLO.Interval, Rules: g.slo(cv),
			})
		}
		files = append(files, f)
	}
	if p := c.Process; p != nil && !p.Disabled {
		g := newGen(c, p.Labels, p.Selector)
		files = append(files, File{
			Name: "golden_" + processName + ".rules.yml",
			Groups: rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{{
				Name: "golden_" + processName, Interval: c.Interval, Rules: g.process(p),
			}}},
		})
	}
	if c.Federated {
		for i := range files {
			for j := range files[i].Groups.Groups {
				gr := &files[i].Groups.Groups[j]
				gr.Rules = slices.DeleteFunc(gr.Rules, func(r rulefmt.Rule) bool { return isFinestLevel(c, r.Record) })
			}
		}
	}
	return files
}

// isFinestLevel reports whether a recorded name is of the level that
// aggregates the services' own series.
func isFinestLevel(c *Config, record string) bool {
	l := c.Labels
	finest := l.Service + "_" + l.Grade + "_" + l.DC
	return strings.HasPrefix(record, finest+":") || strings.HasPrefix(record, finest+"_le:")
}

// gen writes the expressions of one source naming scheme.
type gen struct {
	c        *Config
	out      Labels // labels of the recorded series
	src      Labels // the source series' names of the same labels
	selector string
	w        string  // rate window, e.g. 5m
	levels   []level // finest first
	rules    []rulefmt.Rule
}

// level is one aggregation level: its name prefix and its labels.
type level struct {
	name string
	by   []string
}

func newGen(c *Config, src Labels, selector string) *gen {
	out := c.Labels
	return &gen{
		c: c, out: out, src: src.or(out), selector: selector,
		w: c.RateWindow.String(),
		levels: []level{
			{out.Service + "_" + out.Grade + "_" + out.DC, []string{out.Service, out.Grade, out.DC}},
			{out.Service + "_" + out.Grade, []string{out.Service, out.Grade}},
			{out.Grade, []string{out.Grade}},
		},
	}
}

func (g *gen) record(name, expr string) {
	g.rules = append(g.rules, rulefmt.Rule{Record: name, Expr: expr})
}

// take returns the rules recorded so far and starts afresh.
func (g *gen) take() []rulefmt.Rule {
	r := g.rules
	g.rules = nil
	return r
}

// sel is a selector of metric restricted to series with a service, the
// convention's selector and extra matchers.
func (g *gen) sel(metric string, serviceFilter bool, extra ...string) string {
	var m []string
	if serviceFilter {
		m = append(m, g.src.Service+`!=""`)
	}
	if g.selector != "" {
		m = append(m, g.selector)
	}
	for _, e := range extra {
		if e != "" {
			m = append(m, e)
		}
	}
	if len(m) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(m, ", ") + "}"
}

// relabel maps the source label names onto the output ones and gives
// series without a grade the default grade.
func (g *gen) relabel(expr string) string {
	for _, l := range []struct{ out, src string }{{g.out.Service, g.src.Service}, {g.out.Grade, g.src.Grade}, {g.out.DC, g.src.DC}} {
		if l.out != l.src {
			expr = fmt.Sprintf(`label_replace(%s, %q, "$1", %q, "(.*)")`, expr, l.out, l.src)
		}
	}
	return fmt.Sprintf(`label_replace(%s, %q, %q, %q, "")`, expr, g.out.Grade, g.c.DefaultGrade, g.out.Grade)
}

// sumBy aggregates an expression over the source series to a level.
func (g *gen) sumBy(by []string, expr string) string {
	return fmt.Sprintf("sum by (%s) (%s)", strings.Join(by, ", "), g.relabel(expr))
}

// requestRate is the expression of the request rate over window, summed
// by the labels by, of the requests matching extra.
func (g *gen) requestRate(cv *Convention, by []string, window, extra string) string {
	if h := cv.Requests.Histogram; h != "" {
		return fmt.Sprintf("%s\nor\n%s",
			g.sumBy(by, fmt.Sprintf("rate(%s[%s])", g.sel(h+"_count", true, extra), window)),
			g.sumBy(by, fmt.Sprintf("histogram_count(rate(%s[%s]))", g.sel(h, true, extra), window)))
	}
	return g.sumBy(by, fmt.Sprintf("rate(%s[%s])", g.sel(cv.Requests.Counter, true, extra), window))
}

// golden records the four signals of a convention at every level.
func (g *gen) golden(cv *Convention) []rulefmt.Rule {
	s, w := cv.Signal, g.w
	requests := s + "_requests:rate" + w
	errs := s + "_errors:rate" + w
	ratio := s + "_errors:ratio_rate" + w
	native := s + "_request_duration_seconds:rate" + w
	bucket := s + "_request_duration_seconds_bucket:rate" + w
	inflight := s + "_inflight_requests:avg" + w
	capacity := s + "_capacity:avg" + w
	inflightRatio := s + "_inflight_requests_per_capacity:ratio_avg" + w

	for i, l := range g.levels {
		name := func(metric string) string { return l.name + ":" + metric }
		// from is the series of the finer level for the same metric.
		from := func(metric string) string { return g.levels[max(i-1, 0)].name + ":" + metric }
		by := strings.Join(l.by, ", ")
		if i == 0 {
			g.record(name(requests), g.requestRate(cv, l.by, w, ""))
			// Zero where a service had requests but no errors, so that its
			// ratio is 0, not absent.
			g.record(name(errs), fmt.Sprintf("%s\nor\n0 * %s", g.requestRate(cv, l.by, w, cv.Errors), name(requests)))
		} else {
			g.record(name(requests), fmt.Sprintf("sum by (%s) (%s)", by, from(requests)))
			g.record(name(errs), fmt.Sprintf("sum by (%s) (%s)", by, from(errs)))
		}
		g.record(name(ratio), fmt.Sprintf("%s\n/\n%s", name(errs), name(requests)))

		if h := cv.Duration; h != "" {
			le := l.name + "_le:" + bucket
			if i == 0 {
				g.record(le, g.sumBy(append(l.by[:len(l.by):len(l.by)], "le"), fmt.Sprintf("rate(%s[%s])", g.sel(h+"_bucket", true), w)))
				g.record(name(native), g.sumBy(l.by, fmt.Sprintf("rate(%s[%s])", g.sel(h, true), w)))
			} else {
				g.record(le, fmt.Sprintf("sum by (%s, le) (%s)", by, g.levels[i-1].name+"_le:"+bucket))
				g.record(name(native), fmt.Sprintf("sum by (%s) (%s)", by, from(native)))
			}
			for _, q := range g.c.Quantiles {
				// A native histogram wins over the classic buckets of the
				// same series: it has the finer resolution.
				expr := fmt.Sprintf("histogram_quantile(%s, %s)\nor\nhistogram_quantile(%s, %s)",
					formatFloat(q), name(native), formatFloat(q), le)
				if cv.DurationUnit == "milliseconds" {
					expr = "(\n" + expr + "\n) / 1000"
				}
				g.record(name(s+"_request_duration_seconds:"+quantileOp(q)+"_rate"+w), expr)
			}
		}

		if cv.Inflight != "" {
			if i == 0 {
				g.record(name(inflight), g.sumBy(l.by, fmt.Sprintf("avg_over_time(%s[%s])", g.sel(cv.Inflight, true), w)))
			} else {
				g.record(name(inflight), fmt.Sprintf("sum by (%s) (%s)", by, from(inflight)))
			}
		}
		if cv.Capacity != "" {
			if i == 0 {
				g.record(name(capacity), g.sumBy(l.by, fmt.Sprintf("avg_over_time(%s[%s])", g.sel(cv.Capacity, true), w)))
			} else {
				g.record(name(capacity), fmt.Sprintf("sum by (%s) (%s)", by, from(capacity)))
			}
			g.record(name(inflightRatio), fmt.Sprintf("%s\n/\n%s", name(inflight), name(capacity)))
		}
	}
	return g.take()
}

// process records CPU and memory at every level.
func (g *gen) process(p *Process) []rulefmt.Rule {
	// source applies f to the selector of a process metric and, with a
	// join, gives the result the service and grade of its target.
	source := func(metric string, f func(sel string) string) string {
		if p.Join == nil {
			return f(g.sel(metric, true))
		}
		on := strings.Join(p.Join.On, ", ")
		return fmt.Sprintf("%s * on (%s) group_left (%s, %s) group by (%s, %s, %s) (%s)",
			f(g.sel(metric, false)), on, g.src.Service, g.src.Grade, on, g.src.Service, g.src.Grade,
			g.sel(p.Join.Metric, true))
	}
	id := func(sel string) string { return sel }
	w := g.w
	cpu := "process_cpu_seconds:rate" + w
	cpuRatio := "process_cpu_utilisation:ratio_rate" + w
	memRatio := "process_memory_utilisation:ratio"
	for i, l := range g.levels {
		name := func(metric string) string { return l.name + ":" + metric }
		gauge := func(metric string) {
			if metric == "" {
				return
			}
			if i == 0 {
				g.record(name(metric+":sum"), g.sumBy(l.by, source(metric, id)))
			} else {
				g.record(name(metric+":sum"), fmt.Sprintf("sum by (%s) (%s)", strings.Join(l.by, ", "), g.levels[i-1].name+":"+metric+":sum"))
			}
		}
		if p.CPU != "" {
			if i == 0 {
				g.record(name(cpu), g.sumBy(l.by, source(p.CPU, func(sel string) string {
					return fmt.Sprintf("rate(%s[%s])", sel, w)
				})))
			} else {
				g.record(name(cpu), fmt.Sprintf("sum by (%s) (%s)", strings.Join(l.by, ", "), g.levels[i-1].name+":"+cpu))
			}
			gauge(p.Cores)
			if p.Cores != "" {
				g.record(name(cpuRatio), fmt.Sprintf("%s\n/\n%s", name(cpu), name(p.Cores+":sum")))
			}
		}
		gauge(p.Memory)
		gauge(p.Heap)
		gauge(p.MemoryLimit)
		if p.MemoryLimit != "" {
			g.record(name(memRatio), fmt.Sprintf("%s\n/\n%s", name(p.Memory+":sum"), name(p.MemoryLimit+":sum")))
		}
	}
	return g.take()
}

// quantileOp names a quantile: 0.99 → p99, 0.999 → p999, 0.5 → p50.
func quantileOp(q float64) string {
	s := strconv.FormatFloat(math.Round(q*1e6)/1e4, 'f', -1, 64)
	return "p" + strings.ReplaceAll(s, ".", "")
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', 10, 64) }
