package profiles

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// Limits of a selector, named in the errors that enforce them.
const (
	maxSelectorLen      = 4096
	maxSelectorMatchers = 64
)

// badRequest is a request the client got wrong: a 400 (InvalidArgument for
// the connect service) naming the input and the problem.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// selector is a parsed series selector: an optional name (the profile type
// in Vigil's syntax) and label matchers.
type selector struct {
	Name     string
	Matchers []*model.LabelMatcher
}

// parseSelector parses a series selector written like PromQL's:
// cpu{job="checkout",instance=~"10\\.0\\..*"}, cpu, {service="x"} or {}.
// An empty string selects everything. Values are double-quoted (Go
// escapes), single-quoted or back-quoted.
func parseSelector(s string) (selector, error) {
	var sel selector
	if len(s) > maxSelectorLen {
		return sel, badf("selector is %d bytes, more than the limit of %d", len(s), maxSelectorLen)
	}
	p := &selParser{s: s}
	p.space()
	if p.eof() {
		return sel, nil
	}
	if isNameStart(p.peek()) {
		sel.Name = p.name()
		p.space()
	}
	if p.eof() {
		return sel, nil
	}
	if p.peek() != '{' {
		return sel, badf("selector %q: unexpected %q at offset %d, want '{'", s, p.peek(), p.i)
	}
	p.i++
	for {
		p.space()
		if p.eof() {
			return sel, badf("selector %q: missing '}'", s)
		}
		if p.peek() == '}' {
			p.i++
			break
		}
		if len(sel.Matchers) == maxSelectorMatchers {
			return sel, badf("selector %q has more than the limit of %d matchers", s, maxSelectorMatchers)
		}
		if !isNameStart(p.peek()) {
			return sel, badf("selector %q: want a label name at offset %d", s, p.i)
		}
		name := p.name()
		p.space()
		op, err := p.op()
		if err != nil {
			return sel, badf("selector %q: label %q: %v", s, name, err)
		}
		p.space()
		val, err := p.quoted()
		if err != nil {
			return sel, badf("selector %q: label %q: %v", s, name, err)
		}
		m, err := model.NewLabelMatcher(name, op, val)
		if err != nil {
			return sel, badf("selector %q: %v", s, err)
		}
		sel.Matchers = append(sel.Matchers, m)
		p.space()
		if !p.eof() && p.peek() == ',' {
			p.i++
			continue
		}
		if !p.eof() && p.peek() == '}' {
			continue
		}
		return sel, badf("selector %q: want ',' or '}' at offset %d", s, p.i)
	}
	p.space()
	if !p.eof() {
		return sel, badf("selector %q: unexpected %q after '}'", s, p.s[p.i:])
	}
	return sel, nil
}

type selParser struct {
	s string
	i int
}

func (p *selParser) eof() bool  { return p.i >= len(p.s) }
func (p *selParser) peek() byte { return p.s[p.i] }

func (p *selParser) space() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p *selParser) name() string {
	start := p.i
	for !p.eof() && (isNameStart(p.peek()) || p.peek() >= '0' && p.peek() <= '9' || p.peek() == '.') {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *selParser) op() (model.MatchOp, error) {
	rest := p.s[p.i:]
	switch {
	case strings.HasPrefix(rest, "=~"):
		p.i += 2
		return model.MatchRegexp, nil
	case strings.HasPrefix(rest, "!~"):
		p.i += 2
		return model.MatchNotRegexp, nil
	case strings.HasPrefix(rest, "!="):
		p.i += 2
		return model.MatchNotEqual, nil
	case strings.HasPrefix(rest, "="):
		p.i++
		return model.MatchEqual, nil
	}
	return 0, fmt.Errorf("want one of = != =~ !~ at offset %d", p.i)
}

func (p *selParser) quoted() (string, error) {
	if p.eof() {
		return "", fmt.Errorf("missing quoted value")
	}
	q := p.peek()
	if q != '"' && q != '\'' && q != '`' {
		return "", fmt.Errorf("want a quoted value at offset %d", p.i)
	}
	start := p.i
	p.i++
	for !p.eof() {
		c := p.peek()
		if c == '\\' && q != '`' {
			p.i += 2
			continue
		}
		p.i++
		if c == q {
			raw := p.s[start:p.i]
			if q == '\'' {
				// Go single quotes are runes: requote as a string.
				raw = `"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`), `"`, `\"`) + `"`
			}
			v, err := strconv.Unquote(raw)
			if err != nil {
				return "", fmt.Errorf("value %s is not a valid quoted string", p.s[start:p.i])
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("unterminated quoted value at offset %d", start)
}

// parseTime parses a time parameter: RFC 3339, Unix seconds (fractional
// allowed) or, with more than 10 digits, Unix milliseconds or nanoseconds.
func parseTime(name, v string) (int64, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch digits := len(strings.TrimLeft(v, "-")); {
		case digits <= 10:
			return n * 1e9, nil
		case digits <= 13:
			return n * 1e6, nil
		default:
			return n, nil
		}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) < 1e10 {
		s, frac := math.Modf(f)
		return int64(s)*1e9 + int64(math.Round(frac*1e9)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UnixNano(), nil
	}
	return 0, badf("invalid %s %q: want RFC 3339 or Unix seconds", name, v)
}
