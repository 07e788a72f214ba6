package golden

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
)

func (p *Process) complete(field string) error {
	if p.Disabled {
		return nil
	}
	if p.Preset != "" {
		pre, ok := processPresets[p.Preset]
		if !ok {
			return fmt.Errorf("%s.preset: unknown preset %q; known: %s", field, p.Preset, strings.Join(presetNames(processPresets), ", "))
		}
		fill(&p.Labels.Service, pre.Labels.Service)
		fill(&p.Labels.Grade, pre.Labels.Grade)
		fill(&p.Labels.DC, pre.Labels.DC)
		fill(&p.Selector, pre.Selector)
		fill(&p.CPU, pre.CPU)
		fill(&p.Cores, pre.Cores)
		fill(&p.Memory, pre.Memory)
		fill(&p.Heap, pre.Heap)
		fill(&p.MemoryLimit, pre.MemoryLimit)
		if p.Join == nil && pre.Join != nil {
			j := *pre.Join
			p.Join = &j
		}
	}
	if err := checkLabels(field+".labels", p.Labels); err != nil {
		return err
	}
	if err := checkMatchers(field+".selector", p.Selector); err != nil {
		return err
	}
	for _, m := range []struct{ key, v string }{
		{"cpu", p.CPU}, {"cores", p.Cores}, {"memory", p.Memory}, {"heap", p.Heap}, {"memory_limit", p.MemoryLimit},
	} {
		if err := checkMetric(field+"."+m.key, m.v); err != nil {
			return err
		}
	}
	if p.CPU == "" && p.Memory == "" && p.Heap == "" {
		return fmt.Errorf("%s: name at least one of cpu, memory, heap (or set disabled: true)", field)
	}
	if p.Cores != "" && p.CPU == "" {
		return fmt.Errorf("%s.cores: needs cpu too", field)
	}
	if p.MemoryLimit != "" && p.Memory == "" {
		return fmt.Errorf("%s.memory_limit: needs memory too", field)
	}
	if j := p.Join; j != nil {
		if j.Metric == "" {
			return fmt.Errorf("%s.join.metric: missing", field)
		}
		if err := checkMetric(field+".join.metric", j.Metric); err != nil {
			return err
		}
		if len(j.On) == 0 {
			j.On = []string{"job", "instance"}
		}
		for i, l := range j.On {
			if !model.LegacyValidation.IsValidLabelName(l) {
				return fmt.Errorf("%s.join.on[%d]: %q is not a valid label name", field, i, l)
			}
		}
	}
	return nil
}

func (s *SLO) complete(field string) error {
	if s.Disabled {
		return nil
	}
	if s.Objectives == nil {
		s.Objectives = DefaultObjectives
	}
	for g, o := range s.Objectives {
		if g == "" {
			return fmt.Errorf("%s.objectives: a grade is empty", field)
		}
		if !model.LabelValue(g).IsValid() {
			return fmt.Errorf("%s.objectives[%q]: the grade is not a valid label value", field, g)
		}
		if !(o > 0 && o < 100) {
			return fmt.Errorf("%s.objectives[%q]: %v is not a percentage between 0 and 100 (exclusive)", field, g, o)
		}
	}
	if s.Alerts == nil {
		s.Alerts = DefaultBurnAlerts
	}
	for i, a := range s.Alerts {
		f := fmt.Sprintf("%s.alerts[%d]", field, i)
		switch {
		case a.Severity == "" || !model.LabelValue(a.Severity).IsValid():
			return fmt.Errorf("%s.severity: missing or not a valid label value", f)
		case a.LongWindow <= 0:
			return fmt.Errorf("%s.long_window: missing", f)
		case a.ShortWindow <= 0:
			return fmt.Errorf("%s.short_window: missing", f)
		case a.ShortWindow >= a.LongWindow:
			return fmt.Errorf("%s.short_window: %s is not shorter than long_window %s", f, a.ShortWindow, a.LongWindow)
		case !(a.Factor > 0):
			return fmt.Errorf("%s.factor: %v is not a positive burn rate", f, a.Factor)
		}
	}
	return nil
}

// grades returns the grades with an objective, in order.
func (s *SLO) grades() []string {
	var gs []string
	for g := range s.Objectives {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b string) int {
		ai, aerr := strconv.Atoi(a)
		bi, berr := strconv.Atoi(b)
		if aerr == nil && berr == nil {
			return ai - bi
		}
		return bytes.Compare([]byte(a), []byte(b))
	})
	return gs
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

func checkMetric(field, name string) error {
	if name != "" && !model.LegacyValidation.IsValidMetricName(name) {
		return fmt.Errorf("%s: %q is not a valid metric name", field, name)
	}
	return nil
}

func checkLabels(field string, l Labels) error {
	for _, f := range []struct{ key, v string }{{"service", l.Service}, {"grade", l.Grade}, {"dc", l.DC}} {
		if f.v != "" && !model.LegacyValidation.IsValidLabelName(f.v) {
			return fmt.Errorf("%s.%s: %q is not a valid label name", field, f.key, f.v)
		}
	}
	return nil
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// checkMatchers checks a comma-separated list of label matchers.
func checkMatchers(field, s string) error {
	if s == "" {
		return nil
	}
	if _, err := promqlParser.ParseMetricSelector("x{" + s + "}"); err != nil {
		return fmt.Errorf("%s: %q is not a list of label matchers like code=~\"5..\": %w", field, s, err)
	}
	return nil
}
