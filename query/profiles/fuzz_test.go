package profiles

import (
	"errors"
	"strings"
	"testing"
)

// FuzzSelector feeds the selector and time parsers of the pprof API and
// the Pyroscope service: they answer a selection or a *badRequest, never
// panic, and a parsed selector's matchers are usable.
func FuzzSelector(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `cpu`, `cpu{}`, `cpu{job="checkout",instance=~"10\\.0\\..*"}`, `{service_name="x", __profile_type__="cpu:cpu:nanoseconds:cpu:nanoseconds"}`,
		`heap{env!="dev",job!~'a|b'}`, "{a=`raw`}", `{a="\u00e9\n"}`, `{a=`, `cpu{job="x"`, `{__name__="cpu"}`, `{a="x",}`, `9cpu`, `{__type__="cpu"}`,
	} {
		f.Add(s, "2026-03-02T10:00:00Z")
	}
	f.Add(`cpu`, "1772445600")
	f.Add(`cpu`, "1772445600.5")
	f.Add(`cpu`, "1772445600000")
	f.Add(`cpu`, "-1e300")
	f.Fuzz(func(t *testing.T, sel, tm string) {
		s, err := parseSelector(sel)
		var br *badRequest
		if err != nil && !errors.As(err, &br) {
			t.Fatalf("parseSelector(%q): %v is not a bad request", sel, err)
		}
		if err == nil {
			for _, m := range s.Matchers {
				m.Matches("value")
			}
		}
		if _, err := pyroSelector([]string{sel}, "cpu:cpu:nanoseconds:cpu:nanoseconds"); err != nil && !errors.As(err, &br) {
			t.Fatalf("pyroSelector(%q): %v is not a bad request", sel, err)
		}
		if _, err := parseTime("start", tm); err != nil && !errors.As(err, &br) {
			t.Fatalf("parseTime(%q): %v is not a bad request", tm, err)
		}
		if _, _, err := parseTypeID(tm); err != nil && !errors.As(err, &br) {
			t.Fatalf("parseTypeID(%q): %v", tm, err)
		}
		if _, err := parseProfileID(tm); err != nil && !errors.As(err, &br) {
			t.Fatalf("parseProfileID(%q): %v", tm, err)
		}
	})
}

func TestParseSelector(t *testing.T) {
	for _, c := range []struct {
		in   string
		name string
		n    int
		err  string
	}{
		{``, "", 0, ""},
		{`{}`, "", 0, ""},
		{` cpu { job = "a" , instance=~"b.*", } `, "cpu", 2, ""},
		{`{a='it\'s'}`, "", 1, ""},
		{"{a=`x\\y`}", "", 1, ""},
		{`cpu{job="a"} x`, "", 0, "after '}'"},
		{`cpu{job}`, "", 0, "want one of"},
		{`cpu{job=a}`, "", 0, "quoted value"},
		{`cpu{job="a`, "", 0, "unterminated"},
		{`{"a"="b"}`, "", 0, "label name"},
	} {
		s, err := parseSelector(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseSelector(%q) = %v, want an error naming %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || s.Name != c.name || len(s.Matchers) != c.n {
			t.Errorf("parseSelector(%q) = %+v, %v", c.in, s, err)
		}
	}
	s, _ := parseSelector(`{a='it\'s', b="q\"x"}`)
	if s.Matchers[0].Value != "it's" || s.Matchers[1].Value != `q"x` {
		t.Fatalf("values %q %q", s.Matchers[0].Value, s.Matchers[1].Value)
	}
	for in, want := range map[string]int64{"1772445600": 1772445600e9, "1772445600.25": 1772445600250000000, "1772445600000": 1772445600e9, "2026-03-02T10:00:00Z": 1772445600e9} {
		if got, err := parseTime("start", in); err != nil || got != want {
			t.Errorf("parseTime(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
}
