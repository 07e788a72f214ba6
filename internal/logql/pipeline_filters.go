package logql

import (
	"cmp"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// lineFilter is a compiled line filter. Regular expressions that are plain
// literals run as substring searches.
type lineFilter struct {
	or      []*lineFilter // alternatives of |= "a" or "b"; the line matches any
	pattern *patternFilter
	ip      func(netip.Addr) bool // |= ip("…")
	negate  bool
	text    string         // substring to look for
	fold    bool           // text is lower-case ASCII; match ignoring case
	re      *regexp.Regexp // nil unless a real regular expression
}

func newLineFilter(s *LineFilterStage) (*lineFilter, error) {
	if s.IP {
		m, err := parseIPPattern(s.Text)
		if err != nil {
			return nil, err
		}
		return &lineFilter{negate: s.Op == LineNotContains, ip: m}, nil
	}
	f, err := newSingleLineFilter(s.Op, s.Text)
	if err != nil {
		return nil, err
	}
	for _, t := range s.Or {
		alt, err := newSingleLineFilter(s.Op, t)
		if err != nil {
			return nil, err
		}
		f.or = append(f.or, alt)
	}
	return f, nil
}

func newSingleLineFilter(op LineFilterOp, text string) (*lineFilter, error) {
	s := &LineFilterStage{Op: op, Text: text}
	f := &lineFilter{negate: s.Op == LineNotContains || s.Op == LineNotMatch || s.Op == LineNotPattern, text: s.Text}
	switch s.Op {
	case LineContains, LineNotContains:
		return f, nil
	case LinePattern, LineNotPattern:
		pf, err := newPatternFilter(s.Text)
		if err != nil {
			return nil, err
		}
		f.pattern = pf
		return f, nil
	}
	re, err := regexp.Compile(s.Text)
	if err != nil {
		return nil, err
	}
	if lit, fold, ok := literalRegexp(s.Text); ok {
		f.text, f.fold = lit, fold
		return f, nil
	}
	f.re = re
	return f, nil
}

// literalRegexp reports whether expr matches exactly the lines containing
// one literal, possibly ignoring ASCII case ((?i)error).
func literalRegexp(expr string) (lit string, fold, ok bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", false, false
	}
	re = re.Simplify()
	if re.Op != syntax.OpLiteral {
		return "", false, false
	}
	s := string(re.Rune)
	if re.Flags&syntax.FoldCase == 0 {
		return s, false, true
	}
	// Case folding also matches non-ASCII runes for k (K) and s (ſ); leave
	// those to the regexp engine.
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || strings.ContainsRune("kKsS", rune(s[i])) {
			return "", false, false
		}
	}
	return strings.ToLower(s), true, true
}

func (f *lineFilter) match(line string) bool {
	var ok bool
	switch {
	case f.ip != nil:
		ok = containsIP(line, f.ip)
	case f.pattern != nil:
		ok = f.pattern.match(line)
	case f.re != nil:
		ok = f.re.MatchString(line)
	case f.fold:
		ok = containsFoldASCII(line, f.text)
	default:
		ok = strings.Contains(line, f.text)
	}
	if ok != f.negate {
		return true
	}
	for _, alt := range f.or {
		if alt.match(line) {
			return true
		}
	}
	return false
}

func (f *lineFilter) process(line string, _ *state) bool { return f.match(line) }

// containsFoldASCII reports whether s contains lower, a lower-case ASCII
// string, ignoring ASCII case.
func containsFoldASCII(s, lower string) bool {
	n := len(lower)
	if n == 0 {
		return true
	}
	c0 := lower[0]
	u0 := c0
	if 'a' <= c0 && c0 <= 'z' {
		u0 -= 'a' - 'A'
	}
	for i := 0; i+n <= len(s); i++ {
		if c := s[i]; c != c0 && c != u0 {
			continue
		}
		j := 1
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

type labelFilterStage struct{ f LabelFilter }

func (s *labelFilterStage) process(_ string, st *state) bool { return evalLabelFilter(s.f, st) }

// evalLabelFilter evaluates f against the current labels. A numeric filter
// on an absent label does not match; on a value that does not convert it
// matches and sets __error__ to LabelFilterErr (unless a parser already
// set an error), as in Loki.
func evalLabelFilter(f LabelFilter, st *state) bool {
	switch f := f.(type) {
	case *LabelMatchFilter:
		v, _ := st.get(f.Matcher.Name)
		return f.Matcher.Matches(v)
	case *NumberFilter:
		v, ok := st.get(f.Name)
		if !ok {
			return false
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return st.labelFilterError(err)
		}
		return compare(f.Op, x, f.Value)
	case *DurationFilter:
		v, ok := st.get(f.Name)
		if !ok {
			return false
		}
		x, err := parseDuration(v)
		if err != nil {
			return st.labelFilterError(err)
		}
		return compare(f.Op, x, f.Value)
	case *BytesFilter:
		v, ok := st.get(f.Name)
		if !ok {
			return false
		}
		x, err := parseBytes(v)
		if err != nil {
			return st.labelFilterError(err)
		}
		return compare(f.Op, x, f.Value)
	case *ipMatchFilter:
		return f.eval(st)
	case *BinaryLabelFilter:
		if f.And {
			return evalLabelFilter(f.Left, st) && evalLabelFilter(f.Right, st)
		}
		return evalLabelFilter(f.Left, st) || evalLabelFilter(f.Right, st)
	}
	return false
}

func compare[T cmp.Ordered](op CompareOp, a, b T) bool {
	switch op {
	case CmpEq:
		return a == b
	case CmpNe:
		return a != b
	case CmpGt:
		return a > b
	case CmpGte:
		return a >= b
	case CmpLt:
		return a < b
	case CmpLte:
		return a <= b
	}
	return false
}

// labelFilterError records a label value that a filter could not convert
// and keeps the line, as Loki does; it does not replace a parser's error.
func (st *state) labelFilterError(err error) bool {
	if e, _ := st.get(ErrorLabel); e == "" {
		st.setErrorDetails(ErrLabelFilter, err.Error())
	}
	return true
}
