package logql

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// newFormatStage compiles the stages that are neither line filters,
// parsers nor label filters.
func (p *Pipeline) newFormatStage(s Stage) (stage, error) {
	switch s := s.(type) {
	case *ParserStage:
		return p.newParserStage(s)
	case *DropStage:
		return &dropStage{labels: s.Labels}, nil
	case *KeepStage:
		return &keepStage{labels: s.Labels}, nil
	case *LineFormatStage:
		t, err := newTemplate("line", s.Template)
		if err != nil {
			return nil, fmt.Errorf("invalid line template: %w", err)
		}
		st := &lineFormatStage{idx: p.tmplCount, tmpl: t}
		p.tmplCount++
		return st, nil
	case *LabelFormatStage:
		st := &labelFormatStage{formats: s.Formats, idx: make([]int, len(s.Formats))}
		for i, f := range s.Formats {
			if f.Rename {
				continue
			}
			t, err := newTemplate("label", f.Src)
			if err != nil {
				return nil, fmt.Errorf("invalid template for label '%s': %w", f.Dst, err)
			}
			st.idx[i] = p.tmplCount
			st.tmpls = append(st.tmpls, t)
			p.tmplCount++
		}
		return st, nil
	case *DecolorizeStage:
		return decolorizeStage{}, nil
	}
	return nil, fmt.Errorf("unknown pipeline stage %T", s)
}

// dropStage is `| drop a, b="c"`.
type dropStage struct{ labels []NamedMatcher }

func (s *dropStage) process(_ string, st *state) bool {
	for _, l := range s.labels {
		v, ok := st.get(l.Name)
		if !ok {
			continue
		}
		if l.Matcher == nil || l.Matcher.Matcher.Matches(v) {
			st.del(l.Name)
		}
	}
	return true
}

// keepStage is `| keep a, b="c"`: every other label goes, except the
// error labels, which only drop removes.
type keepStage struct{ labels []NamedMatcher }

func (s *keepStage) process(_ string, st *state) bool {
	var gone []string
	st.each(func(name, value string) {
		if name == ErrorLabel || name == ErrorDetailsLabel {
			return
		}
		for _, l := range s.labels {
			if l.Name == name && (l.Matcher == nil || l.Matcher.Matcher.Matches(value)) {
				return
			}
		}
		gone = append(gone, name)
	})
	for _, name := range gone {
		st.del(name)
	}
	return true
}

// ipMatchFilter is a compiled IPFilter.
type ipMatchFilter struct {
	*IPFilter
	match func(netip.Addr) bool
}

// compileLabelFilter returns f with its ip() filters compiled.
func compileLabelFilter(f LabelFilter) (LabelFilter, error) {
	switch f := f.(type) {
	case *IPFilter:
		m, err := parseIPPattern(f.Pattern)
		if err != nil {
			return nil, err
		}
		return &ipMatchFilter{IPFilter: f, match: m}, nil
	case *BinaryLabelFilter:
		l, err := compileLabelFilter(f.Left)
		if err != nil {
			return nil, err
		}
		r, err := compileLabelFilter(f.Right)
		if err != nil {
			return nil, err
		}
		return &BinaryLabelFilter{And: f.And, Left: l, Right: r}, nil
	}
	return f, nil
}

// evalIP matches the label of f. As in Loki, a line with an __error__
// passes (only string matchers filter those) and a line without the label
// does not.
func (f *ipMatchFilter) eval(st *state) bool {
	if e, _ := st.get(ErrorLabel); e != "" {
		return true
	}
	v, ok := st.get(f.Name)
	if !ok {
		return false
	}
	return containsIP(v, f.match) != f.Negate
}

// containsIP reports whether s holds an address that match accepts: a run
// of address characters ("10.0.0.1", "::1", "2001:db8::7"), or within a
// run the dotted IPv4 part ("10.0.0.1" of "10.0.0.1:8080").
func containsIP(s string, match func(netip.Addr) bool) bool {
	try := func(inRun func(c byte) bool) bool {
		for i := 0; i < len(s); {
			if !inRun(s[i]) {
				i++
				continue
			}
			j := i
			for j < len(s) && inRun(s[j]) {
				j++
			}
			if j-i >= 2 {
				if a, err := netip.ParseAddr(s[i:j]); err == nil && match(a) {
					return true
				}
			}
			i = j
		}
		return false
	}
	return try(isIPChar) || try(func(c byte) bool { return isDigit(c) || c == '.' })
}

func isIPChar(c byte) bool {
	return isDigit(c) || c == '.' || c == ':' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

var errIPPattern = errors.New("ip: invalid pattern")

// parseIPPattern parses Loki's ip() patterns: an address, a CIDR prefix or
// a range "first-last" of one family.
func parseIPPattern(pattern string) (func(netip.Addr) bool, error) {
	if a, err := netip.ParseAddr(pattern); err == nil {
		return func(x netip.Addr) bool { return x.Unmap() == a.Unmap() }, nil
	}
	if p, err := netip.ParsePrefix(pattern); err == nil {
		p = p.Masked()
		return func(x netip.Addr) bool { return p.Contains(x) || p.Addr().Is4() && p.Contains(x.Unmap()) }, nil
	}
	if lo, hi, ok := strings.Cut(pattern, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err1 == nil && err2 == nil && a.Is4() == b.Is4() && a.Compare(b) <= 0 {
			return func(x netip.Addr) bool {
				x = x.Unmap()
				return x.Is4() == a.Is4() && a.Compare(x) <= 0 && x.Compare(b) <= 0
			}, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", errIPPattern, pattern)
}
