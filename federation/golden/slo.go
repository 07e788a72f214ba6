package golden

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
)

// slo records the error ratio per service and grade over every window
// the burn-rate alerts use (the golden group's records averaged over the
// window), then one alert per grade and severity
// (Google SRE workbook, "Alerting on SLOs", multiwindow multi-burn-rate).
func (g *gen) slo(cv *Convention) []rulefmt.Rule {
	s := g.c.SLO
	lvl := g.levels[1] // per service and grade, across datacenters
	ratio := func(w model.Duration) string { return lvl.name + ":" + cv.Signal + "_errors:ratio_rate" + w.String() }

	var windows []model.Duration
	for _, a := range s.Alerts {
		for _, w := range []model.Duration{a.LongWindow, a.ShortWindow} {
			if !slices.Contains(windows, w) {
				windows = append(windows, w)
			}
		}
	}
	slices.Sort(windows)
	// Every window's ratio comes from the 5m rates the golden group
	// records, averaged over the window: cheap (no days-long range over
	// raw series) and available wherever the service_grade level is, so
	// a global level that federates only the aggregates alerts too.
	requests := lvl.name + ":" + cv.Signal + "_requests:rate" + g.w
	errs := lvl.name + ":" + cv.Signal + "_errors:rate" + g.w
	for _, w := range windows {
		if w == g.c.RateWindow {
			continue // the golden group records it
		}
		g.record(ratio(w), fmt.Sprintf("avg_over_time(%s[%s])\n/\navg_over_time(%s[%s])", errs, w, requests, w))
	}

	var severities []string
	for _, a := range s.Alerts {
		if !slices.Contains(severities, a.Severity) {
			severities = append(severities, a.Severity)
		}
	}
	name := camel(cv.Signal) + "ErrorBudgetBurn"
	for _, grade := range s.grades() {
		objective := s.Objectives[grade]
		budget := formatFloat(1 - objective/100)
		for _, sev := range severities {
			var conds []string
			for _, a := range s.Alerts {
				if a.Severity != sev {
					continue
				}
				th := formatFloat(a.Factor) + " * " + budget
				conds = append(conds, fmt.Sprintf("(\n  %s{%s=%q} > %s\nand\n  %s{%s=%q} > %s\n)",
					ratio(a.LongWindow), g.out.Grade, grade, th, ratio(a.ShortWindow), g.out.Grade, grade, th))
			}
			g.rules = append(g.rules, rulefmt.Rule{
				Alert: name,
				Expr:  strings.Join(conds, "\nor\n"),
				For:   s.For,
				Labels: map[string]string{
					"severity":  sev,
					"objective": formatFloat(objective),
					"signal":    cv.Signal,
				},
				Annotations: map[string]string{
					"summary": fmt.Sprintf("{{ $labels.%s }} (grade %s) is burning its error budget too fast", g.out.Service, grade),
					"description": fmt.Sprintf("{{ $labels.%s }} fails {{ $value | humanizePercentage }} of its %s requests; "+
						"its grade-%s objective is %s%% success (error budget %s).", g.out.Service, cv.Signal, grade, formatFloat(objective), budget),
				},
			})
		}
	}
	return g.take()
}

// camel turns vigil_http into VigilHttp.
func camel(s string) string {
	var b strings.Builder
	for _, p := range strings.Split(s, "_") {
		if p != "" {
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}
