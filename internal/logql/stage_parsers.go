package logql

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/valyala/fastjson"
)

var errMissingCapture = errors.New("at least one named capture must be supplied")

// regexpStage is `| regexp "(?P<name>re)"`: the named captures of the
// first match become labels; a line that does not match is kept as is.
type regexpStage struct {
	re    *regexp.Regexp
	names []string // by submatch index; "" for unnamed groups
}

func newRegexpStage(expr string) (*regexpStage, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	s := &regexpStage{re: re, names: re.SubexpNames()}
	seen := map[string]bool{}
	for _, n := range s.names {
		if n == "" {
			continue
		}
		if !validLabelName(n) {
			return nil, fmt.Errorf("invalid extracted label name '%s'", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("duplicate extracted label name '%s'", n)
		}
		seen[n] = true
	}
	if len(seen) == 0 {
		return nil, errMissingCapture
	}
	return s, nil
}

func (s *regexpStage) process(line string, st *state) bool {
	m := s.re.FindStringSubmatchIndex(line)
	for i, name := range s.names {
		if name == "" || m == nil {
			continue
		}
		var v string
		if m[2*i] >= 0 {
			v = line[m[2*i]:m[2*i+1]]
		}
		st.keyBuf = append(st.keyBuf[:0], name...)
		st.set(st.extractedName(st.keyBuf), cleanValue(v))
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

// patternNode is a literal or, when capture is set, a capture named text
// ("_" for <_>, which captures nothing).
type patternNode struct {
	text    string
	capture bool
}

// patternStage is `| pattern "<ip> - <_> [<ts>] <msg>"`.
type patternStage struct {
	nodes []patternNode
	names []string // of the named captures, in order
}

func newPatternStage(expr string) (*patternStage, error) {
	s := &patternStage{nodes: parsePattern(expr)}
	if err := checkConsecutive(s.nodes); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range s.nodes {
		if !n.capture || n.text == "_" {
			continue
		}
		if seen[n.text] {
			return nil, fmt.Errorf("duplicate capture name (%s): invalid expression", n.text)
		}
		seen[n.text] = true
		s.names = append(s.names, n.text)
	}
	if len(s.names) == 0 {
		return nil, errors.New("at least one capture is required")
	}
	return s, nil
}

// parsePattern splits a pattern into literals and captures: <name> or <_>.
func parsePattern(expr string) []patternNode {
	var nodes []patternNode
	lit := 0 // start of the pending literal
	for i := 0; i < len(expr); i++ {
		if expr[i] != '<' {
			continue
		}
		j := i + 1
		for j < len(expr) && isIdentChar(expr[j]) {
			j++
		}
		if j == i+1 || j >= len(expr) || expr[j] != '>' || !isIdentStart(expr[i+1]) {
			continue
		}
		if lit < i {
			nodes = append(nodes, patternNode{text: expr[lit:i]})
		}
		nodes = append(nodes, patternNode{text: expr[i+1 : j], capture: true})
		i, lit = j, j+1
	}
	if lit < len(expr) {
		nodes = append(nodes, patternNode{text: expr[lit:]})
	}
	return nodes
}

func checkConsecutive(nodes []patternNode) error {
	for i, n := range nodes {
		if n.capture && i+1 < len(nodes) && nodes[i+1].capture {
			return fmt.Errorf("found consecutive capture '<%s><%s>': invalid expression", n.text, nodes[i+1].text)
		}
	}
	return nil
}

// patternFilter is the test of a |> or !> line filter.
type patternFilter struct{ nodes []patternNode }

// newPatternFilter parses a line filter pattern: only <_> captures.
func newPatternFilter(expr string) (*patternFilter, error) {
	nodes := parsePattern(expr)
	if err := checkConsecutive(nodes); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.capture && n.text != "_" {
			return nil, fmt.Errorf("named captures are not allowed: found '<%s>'", n.text)
		}
	}
	return &patternFilter{nodes: nodes}, nil
}

// match reports whether line holds the literals in order, each <_> over
// at least one byte, like Loki's pattern line filter: a pattern ending in
// a literal must end the line, one ending in <_> must leave text for it.
func (f *patternFilter) match(line string) bool {
	if line == "" || len(f.nodes) == 0 {
		return line == "" && len(f.nodes) == 0
	}
	off := 0
	for i, n := range f.nodes {
		if n.capture {
			continue
		}
		j := strings.Index(line[off:], n.text)
		if j < 0 || i != 0 && j == 0 {
			return false
		}
		off += j + len(n.text)
	}
	return f.nodes[len(f.nodes)-1].capture == (off != len(line))
}

// process matches like Loki: a leading literal must start the line; each
// capture then runs to the next occurrence of the literal after it, or to
// the end of the line when that literal is missing, which ends matching.
func (s *patternStage) process(line string, st *state) bool {
	if line == "" {
		return true
	}
	nodes := s.nodes
	if !nodes[0].capture {
		if !strings.HasPrefix(line, nodes[0].text) {
			return true
		}
		line = line[len(nodes[0].text):]
		nodes = nodes[1:]
	}
	for len(nodes) > 0 {
		c := nodes[0]
		if len(nodes) == 1 {
			s.capture(st, c, line)
			return true
		}
		lit := nodes[1].text
		nodes = nodes[2:]
		i := strings.Index(line, lit)
		if i < 0 {
			s.capture(st, c, line)
			return true
		}
		s.capture(st, c, line[:i])
		line = line[i+len(lit):]
	}
	return true
}

func (s *patternStage) capture(st *state, n patternNode, v string) {
	if n.text == "_" {
		return
	}
	st.keyBuf = append(st.keyBuf[:0], n.text...)
	st.set(st.extractedName(st.keyBuf), cleanValue(v))
}

// unpackStage is `| unpack`: for a line packed by Promtail's pack stage,
// a JSON object whose "_entry" holds the original line, the other string
// fields become labels and the line becomes "_entry". Like Loki, a JSON
// object without "_entry" is left alone.
type unpackStage struct{ idx int }

const packedEntryKey = "_entry"

func (s *unpackStage) process(line string, st *state) bool {
	if line == "" {
		return true
	}
	if line[0] != '{' {
		st.setErrorDetails(ErrJSONParser, "expecting json object(6), but it is not")
		return true
	}
	v, err := st.json[s.idx].Parse(line)
	if err != nil {
		st.setErrorDetails(ErrJSONParser, err.Error())
		return true
	}
	o, err := v.Object()
	if err != nil {
		st.setErrorDetails(ErrJSONParser, err.Error())
		return true
	}
	entry, packed := "", false
	first := len(st.ext)
	o.Visit(func(k []byte, v *fastjson.Value) {
		if v.Type() != fastjson.TypeString {
			return
		}
		b, _ := v.StringBytes()
		if string(k) == packedEntryKey {
			entry, packed = strings.Clone(bytesToString(b)), true
			return
		}
		st.keyBuf = appendSanitized(st.keyBuf[:0], bytesToString(k), true)
		if name := st.extractedName(st.keyBuf); name != "" {
			st.set(name, st.str(b))
		}
	})
	if !packed {
		clear(st.ext[first:])
		st.ext = st.ext[:first]
		return true
	}
	st.line = entry
	return true
}
