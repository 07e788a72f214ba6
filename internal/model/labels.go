package model

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Label is one name/value pair.
type Label struct {
	Name  string
	Value string
}

// Labels is a label set sorted by name.
type Labels []Label

// Get returns the value of name, or "" when absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Map returns the labels as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// String formats the labels as a LogQL stream selector: {a="1", b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// LabelsFromMap builds a sorted label set from m.
func LabelsFromMap(m map[string]string) Labels {
	ls := make(Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, Label{Name: k, Value: v})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

// MatchOp is the operator of a label matcher.
type MatchOp int

// Matcher operators, as written in LogQL and PromQL.
const (
	MatchEqual     MatchOp = iota // =
	MatchNotEqual                 // !=
	MatchRegexp                   // =~
	MatchNotRegexp                // !~
)

func (op MatchOp) String() string {
	switch op {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return "?"
}

// LabelMatcher selects label values. Regular expressions are fully anchored,
// as in Prometheus and Loki. An absent label matches as the empty string.
type LabelMatcher struct {
	Name  string
	Op    MatchOp
	Value string
	re    *regexp.Regexp
}

// NewLabelMatcher returns a matcher, compiling Value when Op is a regexp
// operator.
func NewLabelMatcher(name string, op MatchOp, value string) (*LabelMatcher, error) {
	m := &LabelMatcher{Name: name, Op: op, Value: value}
	if op == MatchRegexp || op == MatchNotRegexp {
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression %q for label %q: %w", value, name, err)
		}
		m.re = re
	}
	return m, nil
}

// Matches reports whether value satisfies the matcher.
func (m *LabelMatcher) Matches(value string) bool {
	switch m.Op {
	case MatchEqual:
		return value == m.Value
	case MatchNotEqual:
		return value != m.Value
	case MatchRegexp:
		return m.re.MatchString(value)
	case MatchNotRegexp:
		return !m.re.MatchString(value)
	}
	return false
}

// String formats the matcher as LogQL.
func (m *LabelMatcher) String() string { return fmt.Sprintf("%s%s%q", m.Name, m.Op, m.Value) }

// MatchLabels reports whether ls satisfies every matcher.
func MatchLabels(ms []*LabelMatcher, ls Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}
