package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	pmodel "github.com/prometheus/common/model"
)

// parseTime parses a time parameter: RFC 3339, Sentry's zone-less
// "2006-01-02T15:04:05" (UTC), or Unix seconds, milliseconds or
// nanoseconds by their number of digits. "" gives 0.
func parseTime(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		switch {
		case len(v) <= 10:
			return n * 1e9, nil
		case len(v) <= 13:
			return n * 1e6, nil
		}
		return n, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UnixNano(), nil
		}
	}
	return 0, badParam(name, "cannot parse %q as a time: want RFC 3339, 2006-01-02T15:04:05 (UTC) or Unix seconds", v)
}

// parseDuration parses a Sentry period or interval: 30s, 5m, 1h, 14d, 2w.
func parseDuration(name, v string) (time.Duration, error) {
	d, err := pmodel.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, badParam(name, "cannot parse %q as a duration: want a number and a unit, such as 30s, 5m, 1h, 14d", v)
	}
	return time.Duration(d), nil
}

// timeRange returns the range of start and end, else of statsPeriod
// (ending now), else unbounded (0, 0).
func (a *API) timeRange(r *http.Request) (start, end int64, err error) {
	if start, err = parseTime("start", r.Form.Get("start")); err != nil {
		return 0, 0, err
	}
	if end, err = parseTime("end", r.Form.Get("end")); err != nil {
		return 0, 0, err
	}
	if p := r.Form.Get("statsPeriod"); p != "" && start == 0 && end == 0 {
		d, err := parseDuration("statsPeriod", p)
		if err != nil {
			return 0, 0, err
		}
		end = a.opts.now().UnixNano()
		start = end - int64(d)
	}
	if start != 0 && end != 0 && end <= start {
		return 0, 0, badParam("end", "%s is not after start %s", r.Form.Get("end"), r.Form.Get("start"))
	}
	return start, end, nil
}

// parseLimit parses a page size parameter, default def, at most max.
func parseLimit(r *http.Request, name string, def, max int) (int, error) {
	v := r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badParam(name, "%q is not a positive number", v)
	}
	return min(n, max), nil
}

// values returns the non-empty values of a repeated parameter, also split
// at commas.
func values(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.Form[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// projects returns the project parameters; Sentry's -1 is every project.
func projects(r *http.Request) []string {
	var out []string
	for _, p := range values(r, "project") {
		if p != "-1" {
			out = append(out, p)
		}
	}
	return out
}

// searchTerm is one "key:value" of a Sentry search.
type searchTerm struct {
	Key, Value string
	Negated    bool
}

// MaxSearchBytes bounds a search query.
const MaxSearchBytes = 4096

// parseSearch splits a Sentry search ("is:unresolved level:error timeout
// release:\"v 2\"") into key:value terms and the free text (the other
// words joined by spaces).
func parseSearch(q string) (terms []searchTerm, text string, err error) {
	if len(q) > MaxSearchBytes {
		return nil, "", badParam("query", "%d bytes; at most %d", len(q), MaxSearchBytes)
	}
	var words []string
	for rest := strings.TrimSpace(q); rest != ""; rest = strings.TrimSpace(rest) {
		tok, remaining, err := nextToken(rest)
		if err != nil {
			return nil, "", err
		}
		rest = remaining
		key, value, ok := strings.Cut(tok, ":")
		if !ok || !isSearchKey(strings.TrimPrefix(key, "!")) {
			words = append(words, unquote(tok))
			continue
		}
		t := searchTerm{Key: key, Value: unquote(value)}
		if strings.HasPrefix(t.Key, "!") {
			t.Key, t.Negated = t.Key[1:], true
		}
		terms = append(terms, t)
	}
	return terms, strings.Join(words, " "), nil
}

// isSearchKey reports whether k can be a search key: letters, digits and
// ._-[]() only ("level", "tags[user]", "error.type").
func isSearchKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("._-[]()", c):
		default:
			return false
		}
	}
	return true
}

// nextToken returns the first token of s: up to a space outside quotes.
func nextToken(s string) (tok, rest string, err error) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ' ' && !inQuote:
			return s[:i], s[i:], nil
		}
	}
	if inQuote {
		return "", "", badParam("query", "unterminated quote in %q", s)
	}
	return s, "", nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}
