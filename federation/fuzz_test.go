package federation

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzParseSelectors: /federate's match[] never panics, and what it
// accepts never selects every series.
func FuzzParseSelectors(f *testing.F) {
	for _, s := range []string{`up`, `{job="api"}`, `{__name__=~"job:.*"}`, `{job=`, `{}`, `x{a!~"b|c",d!="e"}`, "{a=\"\\xff\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sets, err := parseSelectors([]string{s})
		if err != nil {
			return
		}
		if len(sets) != 1 || !slices.ContainsFunc(sets[0], func(m *labels.Matcher) bool { return !m.Matches("") }) {
			t.Errorf("%q: got %v, which selects every series", s, sets)
		}
	})
}
