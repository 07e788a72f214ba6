package query

import (
	"fmt"
	"strconv"
	"strings"
)

// evalConstant evaluates a constant arithmetic expression made of numbers,
// vector(N), + - * / and parentheses, as Grafana's Loki data source sends
// for its health check ("vector(1)+vector(1)"). ok is false when q is not
// such an expression (it then goes to the LogQL parser).
func evalConstant(q string) (v float64, ok bool, err error) {
	if strings.ContainsAny(q, "{}[]|\"`") {
		return 0, false, nil
	}
	p := &constParser{s: strings.ReplaceAll(q, " ", "")}
	if p.s == "" {
		return 0, false, nil
	}
	v, err = p.sum()
	if err != nil {
		return 0, false, nil
	}
	if p.i != len(p.s) {
		return 0, false, nil
	}
	return v, true, nil
}

type constParser struct {
	s string
	i int
}

func (p *constParser) sum() (float64, error) {
	v, err := p.product()
	for err == nil && p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
		op := p.s[p.i]
		p.i++
		var w float64
		if w, err = p.product(); op == '+' {
			v += w
		} else {
			v -= w
		}
	}
	return v, err
}

func (p *constParser) product() (float64, error) {
	v, err := p.atom()
	for err == nil && p.i < len(p.s) && (p.s[p.i] == '*' || p.s[p.i] == '/') {
		op := p.s[p.i]
		p.i++
		var w float64
		if w, err = p.atom(); op == '*' {
			v *= w
		} else {
			v /= w
		}
	}
	return v, err
}

func (p *constParser) atom() (float64, error) {
	switch {
	case strings.HasPrefix(p.s[p.i:], "vector("):
		p.i += len("vector(")
		v, err := p.sum()
		if err != nil || p.i >= len(p.s) || p.s[p.i] != ')' {
			return 0, fmt.Errorf("bad vector()")
		}
		p.i++
		return v, nil
	case p.i < len(p.s) && p.s[p.i] == '(':
		p.i++
		v, err := p.sum()
		if err != nil || p.i >= len(p.s) || p.s[p.i] != ')' {
			return 0, fmt.Errorf("bad parentheses")
		}
		p.i++
		return v, nil
	}
	j := p.i
	for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] == '.') {
		j++
	}
	v, err := strconv.ParseFloat(p.s[p.i:j], 64)
	if err != nil {
		return 0, err
	}
	p.i = j
	return v, nil
}
