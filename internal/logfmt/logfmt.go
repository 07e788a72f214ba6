// Package logfmt decodes logfmt lines such as
//
//	level=info msg="hello world" dur=1.2s flag
//
// into key/value pairs without allocating in the common case: keys and
// values that need no unescaping are substrings of the input line.
package logfmt

import (
	"fmt"
	"strconv"
	"strings"
)

// SyntaxError describes malformed logfmt input.
type SyntaxError struct {
	// Offset is the 0-based byte offset of the offending byte in the line.
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("logfmt syntax error at byte offset %d: %s", e.Offset, e.Msg)
}

// Parse decodes line and calls fn for every key/value pair in order. A bare
// key (`flag`) and a key with nothing after its equals sign (`key=`) both have
// an empty value. Quoted values may contain Go escape sequences (\" \\ \n
// \t \uXXXX ...); unquoted values run to the next space or control character
// and may contain '=' and '"'.
//
// On malformed input, such as an unterminated quoted value, Parse returns a
// *SyntaxError after calling fn for every pair decoded before the error.
//
// Keys and values are substrings of line unless a value had to be unescaped;
// fn may keep them.
func Parse(line string, fn func(key, value string)) error {
	return scan(line, true, func(key, value string, _ bool) { fn(key, value) })
}

// IsLogfmt reports whether line looks like logfmt: it decodes without error,
// every key is made of [A-Za-z0-9_.-] and at least one key is followed by an
// equals sign. It does not allocate.
func IsLogfmt(line string) bool {
	pairs, ok := 0, true
	err := scan(line, false, func(key, _ string, hasValue bool) {
		if !isPlainKey(key) {
			ok = false
		}
		if hasValue {
			pairs++
		}
	})
	return err == nil && ok && pairs > 0
}

func isPlainKey(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return key != ""
}

// isSpace reports whether c separates pairs: space and every control byte.
func isSpace(c byte) bool { return c <= ' ' }

// scan is the decoder behind Parse and IsLogfmt. When unescape is false,
// quoted values containing escapes are validated but passed to fn raw.
func scan(line string, unescape bool, fn func(key, value string, hasValue bool)) error {
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return nil
		}
		start := i
		for i < len(line) && !isSpace(line[i]) && line[i] != '=' && line[i] != '"' {
			i++
		}
		if i == start {
			return &SyntaxError{Offset: i, Msg: fmt.Sprintf("unexpected %q where a key should start", line[i])}
		}
		key := line[start:i]
		if i == len(line) || isSpace(line[i]) {
			fn(key, "", false)
			continue
		}
		if line[i] == '"' {
			return &SyntaxError{Offset: i, Msg: `unexpected '"' in key`}
		}
		i++ // '='
		if i == len(line) || isSpace(line[i]) {
			fn(key, "", true)
			continue
		}
		if line[i] != '"' {
			start = i
			for i < len(line) && !isSpace(line[i]) {
				i++
			}
			fn(key, line[start:i], true)
			continue
		}
		value, end, err := quoted(line, i, unescape)
		if err != nil {
			return err
		}
		i = end
		if i < len(line) && !isSpace(line[i]) {
			return &SyntaxError{Offset: i, Msg: "expected a space after the closing quote"}
		}
		fn(key, value, true)
	}
}

// quoted decodes the quoted value that starts at line[open] == '"'. It
// returns the value and the offset just past the closing quote.
func quoted(line string, open int, unescape bool) (string, int, error) {
	i := open + 1
	for i < len(line) && line[i] != '"' && line[i] != '\\' {
		i++
	}
	if i == len(line) {
		return "", 0, &SyntaxError{Offset: open, Msg: "unterminated quoted value"}
	}
	if line[i] == '"' {
		return line[open+1 : i], i + 1, nil
	}
	// Slow path: the value has escapes.
	var b strings.Builder
	if unescape {
		b.Grow(len(line) - open)
		b.WriteString(line[open+1 : i])
	}
	for i < len(line) {
		switch c := line[i]; c {
		case '"':
			if !unescape {
				return line[open+1 : i], i + 1, nil
			}
			return b.String(), i + 1, nil
		case '\\':
			r, multibyte, tail, err := strconv.UnquoteChar(line[i:], '"')
			if err != nil {
				return "", 0, &SyntaxError{Offset: i, Msg: "invalid escape sequence in quoted value"}
			}
			if unescape {
				if r < 0x80 || !multibyte {
					b.WriteByte(byte(r)) // #nosec G115 -- r < 0x80, or a byte read as a rune when !multibyte
				} else {
					b.WriteRune(r)
				}
			}
			i = len(line) - len(tail)
		default:
			if unescape {
				b.WriteByte(c)
			}
			i++
		}
	}
	return "", 0, &SyntaxError{Offset: open, Msg: "unterminated quoted value"}
}
