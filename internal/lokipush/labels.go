package lokipush

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
)

// ParseLabels parses a stream's labels as Loki's push protobuf carries
// them, in Prometheus' series notation: {name="value", other="value"}.
// Values are double-, single- or backquoted with Go escapes; names are
// identifiers or quoted strings; a trailing comma is allowed. Labels with
// an empty value are dropped, as Loki drops them. The result keeps the
// order of the input; duplicate names are an error.
func ParseLabels(dst []model.Label, s string) ([]model.Label, error) {
	p := labelParser{s: s}
	p.space()
	if !p.eat('{') {
		return dst, p.errorf("unexpected %s, expected \"{\"", p.what())
	}
	start := len(dst)
	for {
		p.space()
		if p.eat('}') {
			break
		}
		name, err := p.name()
		if err != nil {
			return dst, err
		}
		p.space()
		if !p.eat('=') {
			return dst, p.errorf("unexpected %s in label matching, expected \"=\"", p.what())
		}
		p.space()
		value, err := p.quoted()
		if err != nil {
			return dst, err
		}
		for _, l := range dst[start:] {
			if l.Name == name {
				return dst, fmt.Errorf("duplicate label name: %q", name)
			}
		}
		dst = append(dst, model.Label{Name: name, Value: value})
		p.space()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return dst, p.errorf("unexpected %s in label set, expected \",\" or \"}\"", p.what())
	}
	p.space()
	if p.i < len(p.s) {
		return dst, p.errorf("unexpected %s after the label set", p.what())
	}
	kept := slices.DeleteFunc(dst[start:], func(l model.Label) bool { return l.Value == "" })
	return dst[:start+len(kept)], nil
}

type labelParser struct {
	s string
	i int
}

// errorf reports a problem at the current position as Prometheus' parser
// does: line:column: parse error: ….
func (p *labelParser) errorf(format string, args ...any) error {
	return fmt.Errorf("1:%d: parse error: %s", p.i+1, fmt.Sprintf(format, args...))
}

func (p *labelParser) what() string {
	if p.i >= len(p.s) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return strconv.QuoteRune(r)
}

func (p *labelParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *labelParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *labelParser) name() (string, error) {
	if p.i < len(p.s) && (p.s[p.i] == '"' || p.s[p.i] == '\'' || p.s[p.i] == '`') {
		n, err := p.quoted()
		if err == nil && n == "" {
			return "", p.errorf("empty label name")
		}
		return n, err
	}
	j := p.i
	for j < len(p.s) && isNameByte(p.s[j], j == p.i) {
		j++
	}
	if j == p.i {
		return "", p.errorf("unexpected %s, expected a label name", p.what())
	}
	n := p.s[p.i:j]
	p.i = j
	return n, nil
}

// isName reports whether s is a label name that needs no quotes.
func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return s != ""
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// quoted reads a quoted string, unescaping it. The common case, a
// double-quoted value without escapes, returns a substring of the input.
func (p *labelParser) quoted() (string, error) {
	if p.i >= len(p.s) {
		return "", p.errorf("unexpected end of input, expected a quoted string")
	}
	q := p.s[p.i]
	if q != '"' && q != '\'' && q != '`' {
		return "", p.errorf("unexpected %s, expected a quoted string", p.what())
	}
	start := p.i
	rest := p.s[p.i+1:]
	if q == '`' {
		end := strings.IndexByte(rest, '`')
		if end < 0 {
			return "", p.errorf("unterminated raw string")
		}
		p.i += end + 2
		return rest[:end], nil
	}
	if end := strings.IndexByte(rest, q); end >= 0 && strings.IndexByte(rest[:end], '\\') < 0 && strings.IndexByte(rest[:end], '\n') < 0 {
		p.i += end + 2
		return rest[:end], nil
	}
	var b strings.Builder
	for {
		if len(rest) == 0 {
			p.i = len(p.s)
			return "", fmt.Errorf("1:%d: parse error: unterminated quoted string", start+1)
		}
		if rest[0] == q {
			p.i = len(p.s) - len(rest) + 1
			return b.String(), nil
		}
		if rest[0] == '\n' {
			p.i = len(p.s) - len(rest)
			return "", p.errorf("unterminated quoted string")
		}
		r, _, tail, err := strconv.UnquoteChar(rest, q)
		if err != nil {
			p.i = len(p.s) - len(rest)
			return "", p.errorf("invalid escape in quoted string: %v", err)
		}
		b.WriteRune(r)
		rest = tail
	}
}
