package logql

import (
	"errors"
	"strconv"
	"strings"
)

// parseJSONPath splits a json parser expression such as
// `request.headers["User-Agent"]` or `servers[0].name` into the keys and
// array indexes (as decimal strings) to follow.
func parseJSONPath(s string) ([]string, error) {
	var keys []string
	i := 0
	field := func() error {
		start := i
		for i < len(s) && !strings.ContainsRune(".[]\" \t\r\n", rune(s[i])) {
			i++
		}
		if i == start {
			return errors.New("want a field name at offset " + strconv.Itoa(start))
		}
		keys = append(keys, s[start:i])
		return nil
	}
	if s == "" {
		return nil, errors.New("empty path")
	}
	if s[0] != '[' {
		if err := field(); err != nil {
			return nil, err
		}
	}
	for i < len(s) {
		switch s[i] {
		case '.':
			i++
			if err := field(); err != nil {
				return nil, err
			}
		case '[':
			i++
			key, n, err := bracket(s[i:])
			if err != nil {
				return nil, err
			}
			keys = append(keys, key)
			i += n
		default:
			return nil, errors.New("unexpected " + strconv.QuoteRune(rune(s[i])) + " at offset " + strconv.Itoa(i))
		}
	}
	return keys, nil
}

// bracket reads `0]` or `"key"]`, returning the key and the bytes read.
func bracket(s string) (string, int, error) {
	if s != "" && s[0] == '"' {
		i := 1
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(s) {
			return "", 0, errors.New("unterminated quoted key")
		}
		key, err := strconv.Unquote(s[:i+1])
		if err != nil {
			return "", 0, errors.New("invalid quoted key " + s[:i+1])
		}
		if i+1 >= len(s) || s[i+1] != ']' {
			return "", 0, errors.New("want ] after quoted key")
		}
		return key, i + 2, nil
	}
	end := strings.IndexByte(s, ']')
	if end <= 0 {
		return "", 0, errors.New("want an index or a quoted key in brackets")
	}
	if _, err := strconv.ParseUint(s[:end], 10, 31); err != nil {
		return "", 0, errors.New("invalid array index " + strconv.Quote(s[:end]))
	}
	return s[:end], end + 1, nil
}
