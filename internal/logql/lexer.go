package logql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokError
	tokIdent
	tokString
	tokNumber
	tokDuration
	tokBytes
	// Arithmetic operators of metric queries.
	tokAdd       // +
	tokSub       // -
	tokMul       // *
	tokDiv       // /
	tokMod       // %
	tokPow       // ^
	tokLBrace    // {
	tokRBrace    // }
	tokLParen    // (
	tokRParen    // )
	tokLBracket  // [
	tokRBracket  // ]
	tokComma     // ,
	tokEq        // =
	tokNeq       // !=
	tokRe        // =~
	tokNre       // !~
	tokPipeExact // |=
	tokPipeMatch // |~
	tokPipe      // |
	tokGT        // >
	tokGTE       // >=
	tokLT        // <
	tokLTE       // <=
	tokCmpEq     // ==
	tokFlag      // --strict, a parser flag
	tokPipePatt  // |>
	tokNotPatt   // !>
)

var tokenNames = [...]string{
	tokEOF:       "end of input",
	tokError:     "invalid token",
	tokIdent:     "IDENTIFIER",
	tokString:    "STRING",
	tokNumber:    "NUMBER",
	tokDuration:  "DURATION",
	tokBytes:     "BYTES",
	tokAdd:       "+",
	tokSub:       "-",
	tokMul:       "*",
	tokDiv:       "/",
	tokMod:       "%",
	tokPow:       "^",
	tokLBrace:    "{",
	tokRBrace:    "}",
	tokLParen:    "(",
	tokRParen:    ")",
	tokLBracket:  "[",
	tokRBracket:  "]",
	tokComma:     ",",
	tokEq:        "=",
	tokNeq:       "!=",
	tokRe:        "=~",
	tokNre:       "!~",
	tokPipeExact: "|=",
	tokPipeMatch: "|~",
	tokPipe:      "|",
	tokGT:        ">",
	tokGTE:       ">=",
	tokLT:        "<",
	tokLTE:       "<=",
	tokCmpEq:     "==",
	tokFlag:      "FLAG",
	tokPipePatt:  "|>",
	tokNotPatt:   "!>",
}

func (k tokenKind) String() string { return tokenNames[k] }

// token is one lexeme. For strings, val holds the unquoted value; for
// errors, the message. text is always the source text.
type token struct {
	kind tokenKind
	pos  int // byte offset in the query
	text string
	val  string
}

// lexer splits a query into tokens on demand, so that the parser reports
// the first problem in reading order.
type lexer struct {
	src string
	pos int
}

func (l *lexer) errorf(pos int, format string, args ...any) token {
	l.pos = len(l.src) // stop: every later call returns EOF
	return token{kind: tokError, pos: pos, val: fmt.Sprintf(format, args...)}
}

// next returns the next token; after an error or at the end it returns
// tokEOF.
func (l *lexer) next() token {
	l.skipSpace()
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: len(l.src)}
	}
	start := l.pos
	c := l.src[start]
	switch {
	case isIdentStart(c):
		l.pos++
		for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokIdent, pos: start, text: l.src[start:l.pos]}
	case c == '"' || c == '`':
		return l.lexString()
	case isDigit(c) || c == '-' && start+1 < len(l.src) && isDigit(l.src[start+1]):
		return l.lexNumber()
	case strings.HasPrefix(l.src[start:], "--") && start+2 < len(l.src) && isIdentStart(l.src[start+2]):
		l.pos += 2
		for l.pos < len(l.src) && (isIdentChar(l.src[l.pos]) || l.src[l.pos] == '-') {
			l.pos++
		}
		return token{kind: tokFlag, pos: start, text: l.src[start:l.pos]}
	}
	op := func(kind tokenKind, n int) token {
		l.pos += n
		return token{kind: kind, pos: start, text: l.src[start:l.pos]}
	}
	var c2 byte
	if start+1 < len(l.src) {
		c2 = l.src[start+1]
	}
	switch c {
	case '{':
		return op(tokLBrace, 1)
	case '}':
		return op(tokRBrace, 1)
	case '(':
		return op(tokLParen, 1)
	case ')':
		return op(tokRParen, 1)
	case '[':
		return op(tokLBracket, 1)
	case ']':
		return op(tokRBracket, 1)
	case ',':
		return op(tokComma, 1)
	case '=':
		switch c2 {
		case '~':
			return op(tokRe, 2)
		case '=':
			return op(tokCmpEq, 2)
		}
		return op(tokEq, 1)
	case '!':
		switch c2 {
		case '=':
			return op(tokNeq, 2)
		case '~':
			return op(tokNre, 2)
		case '>':
			return op(tokNotPatt, 2)
		}
	case '|':
		switch c2 {
		case '=':
			return op(tokPipeExact, 2)
		case '~':
			return op(tokPipeMatch, 2)
		case '>':
			return op(tokPipePatt, 2)
		}
		return op(tokPipe, 1)
	case '>':
		if c2 == '=' {
			return op(tokGTE, 2)
		}
		return op(tokGT, 1)
	case '<':
		if c2 == '=' {
			return op(tokLTE, 2)
		}
		return op(tokLT, 1)
	case '+', '-', '*', '/', '%', '^': // a '-' before a digit starts a number
		return op(arithTokens[c], 1)
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	if r == utf8.RuneError {
		return l.errorf(start, "unexpected byte %#02x", c)
	}
	return l.errorf(start, "unexpected character %q", r)
}

// arithTokens are the one-character arithmetic operators.
var arithTokens = map[byte]tokenKind{'+': tokAdd, '-': tokSub, '*': tokMul, '/': tokDiv, '%': tokMod, '^': tokPow}

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case ' ', '\t', '\n', '\r':
			l.pos++
		case '#': // comment to the end of the line
			if i := strings.IndexByte(l.src[l.pos:], '\n'); i >= 0 {
				l.pos += i + 1
			} else {
				l.pos = len(l.src)
			}
		default:
			return
		}
	}
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

// lexString reads a double-quoted string with Go escapes or a back-quoted
// raw string.
func (l *lexer) lexString() token {
	start := l.pos
	quote := l.src[start]
	if quote == '`' {
		end := strings.IndexByte(l.src[start+1:], '`')
		if end < 0 {
			return l.errorf(start, "unterminated raw string")
		}
		l.pos = start + 1 + end + 1
		return token{kind: tokString, pos: start, text: l.src[start:l.pos], val: l.src[start+1 : l.pos-1]}
	}
	i := start + 1
	for i < len(l.src) && l.src[i] != '"' && l.src[i] != '\\' && l.src[i] != '\n' {
		i++
	}
	if i < len(l.src) && l.src[i] == '"' { // fast path: no escapes
		l.pos = i + 1
		return token{kind: tokString, pos: start, text: l.src[start:l.pos], val: l.src[start+1 : i]}
	}
	var b strings.Builder
	b.WriteString(l.src[start+1 : i])
	for i < len(l.src) {
		switch c := l.src[i]; c {
		case '"':
			l.pos = i + 1
			return token{kind: tokString, pos: start, text: l.src[start:l.pos], val: b.String()}
		case '\n':
			return l.errorf(start, "unterminated string")
		case '\\':
			r, multibyte, tail, err := strconv.UnquoteChar(l.src[i:], '"')
			if err != nil {
				return l.errorf(i, "invalid escape sequence in string")
			}
			if r < utf8.RuneSelf || !multibyte {
				b.WriteByte(byte(r)) // #nosec G115 -- r < 0x80, or a byte read as a rune when !multibyte
			} else {
				b.WriteRune(r)
			}
			i = len(l.src) - len(tail)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return l.errorf(start, "unterminated string")
}

// lexNumber reads a number, a duration (5m, 1h30m, 250ms) or a byte size
// (10KB, 1.5MiB). Which one is decided by the whole run of characters.
func (l *lexer) lexNumber() token {
	start := l.pos
	i := start
	if l.src[i] == '-' {
		i++
	}
	for i < len(l.src) {
		n := numberCharLen(l.src[i:])
		if n == 0 {
			break
		}
		i += n
	}
	l.pos = i
	text := l.src[start:i]
	tok := token{pos: start, text: text}
	switch {
	case isDecimal(text):
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			return l.errorf(start, "number %s out of range", text)
		}
		tok.kind = tokNumber
	case validDuration(text):
		tok.kind = tokDuration
	case validBytes(text):
		tok.kind = tokBytes
	default:
		return l.errorf(start, "invalid number, duration or byte size %q", text)
	}
	return tok
}

// numberCharLen returns how many bytes at the start of s continue a number,
// duration or byte size literal: letters, digits, '.', the micro signs and
// an exponent with its sign (1e+06).
func numberCharLen(s string) int {
	c := s[0]
	switch {
	case (c == 'e' || c == 'E') && len(s) > 2 && (s[1] == '+' || s[1] == '-') && isDigit(s[2]):
		return 2
	case isIdentChar(c) || c == '.':
		return 1
	case strings.HasPrefix(s, "µ") || strings.HasPrefix(s, "μ"):
		return len("µ")
	}
	return 0
}

// isDecimal reports whether s is -?digits[.digits][e[+-]digits].
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
