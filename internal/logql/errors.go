package logql

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ParseError is a problem in a query, at a 1-based line and column (the
// column counts characters, not bytes).
type ParseError struct {
	Line, Col int
	Msg       string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// newParseError locates byte offset pos in src.
func newParseError(src string, pos int, msg string) *ParseError {
	if pos > len(src) {
		pos = len(src)
	}
	before := src[:pos]
	line := 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return &ParseError{Line: line, Col: 1 + utf8.RuneCountInString(before), Msg: msg}
}

// syntaxError builds Loki's "syntax error: unexpected X, expecting Y".
func syntaxError(src string, t token, expecting string) *ParseError {
	if t.kind == tokError {
		return newParseError(src, t.pos, t.val)
	}
	msg := "syntax error: unexpected " + t.kind.String()
	if expecting != "" {
		msg += ", expecting " + expecting
	}
	return newParseError(src, t.pos, msg)
}
