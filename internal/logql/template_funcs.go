package logql

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// templateFuncs are the functions of line_format and label_format
// templates: Loki's own and the Sprig functions Loki enables, with their
// argument order (the piped value last). __line__ and __timestamp__ are
// bound per evaluation; these entries only let templates parse.
var templateFuncs = template.FuncMap{
	"__line__":      func() string { return "" },
	"__timestamp__": func() time.Time { return time.Time{} },

	"ToLower":    strings.ToLower,
	"ToUpper":    strings.ToUpper,
	"Replace":    strings.Replace,
	"Trim":       strings.Trim,
	"TrimLeft":   strings.TrimLeft,
	"TrimRight":  strings.TrimRight,
	"TrimPrefix": strings.TrimPrefix,
	"TrimSuffix": strings.TrimSuffix,
	"TrimSpace":  strings.TrimSpace,
	"regexReplaceAll": func(re, s, repl string) (string, error) {
		r, err := regexp.Compile(re)
		if err != nil {
			return "", err
		}
		return r.ReplaceAllString(s, repl), nil
	},
	"regexReplaceAllLiteral": func(re, s, repl string) (string, error) {
		r, err := regexp.Compile(re)
		if err != nil {
			return "", err
		}
		return r.ReplaceAllLiteralString(s, repl), nil
	},
	"count": func(re, s string) (int, error) {
		r, err := regexp.Compile(re)
		if err != nil {
			return 0, err
		}
		return len(r.FindAllStringIndex(s, -1)), nil
	},
	"urldecode":        url.QueryUnescape,
	"urlencode":        url.QueryEscape,
	"b64enc":           func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"b64dec":           b64dec,
	"bytes":            func(s string) (float64, error) { v, err := parseBytes(s); return float64(v), err },
	"duration":         durationSeconds,
	"duration_seconds": durationSeconds,
	"unixEpochMillis":  func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) },
	"unixEpochNanos":   func(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) },
	"unixEpoch":        func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) },
	"unixToTime":       unixToTime,
	"alignLeft":        alignLeft,
	"alignRight":       alignRight,

	"lower":      strings.ToLower,
	"upper":      strings.ToUpper,
	"title":      title,
	"trunc":      trunc,
	"substr":     substr,
	"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
	"hasPrefix":  func(p, s string) bool { return strings.HasPrefix(s, p) },
	"hasSuffix":  func(p, s string) bool { return strings.HasSuffix(s, p) },
	"indent":     indent,
	"nindent":    func(n int, s string) string { return "\n" + indent(n, s) },
	"replace":    func(old, repl, s string) string { return strings.ReplaceAll(s, old, repl) },
	"repeat":     repeat,
	"trim":       strings.TrimSpace,
	"trimAll":    func(cut, s string) string { return strings.Trim(s, cut) },
	"trimPrefix": func(p, s string) string { return strings.TrimPrefix(s, p) },
	"trimSuffix": func(p, s string) string { return strings.TrimSuffix(s, p) },
	"default":    defaultValue,
	"int":        func(v any) int { return int(toFloat(v)) },
	"float64":    toFloat,
	"add":        func(a, b any) int64 { return int64(toFloat(a)) + int64(toFloat(b)) },
	"sub":        func(a, b any) int64 { return int64(toFloat(a)) - int64(toFloat(b)) },
	"mul":        func(a, b any) int64 { return int64(toFloat(a)) * int64(toFloat(b)) },
	"div":        intDiv,
	"mod":        intMod,
	"addf":       func(a, b any) float64 { return toFloat(a) + toFloat(b) },
	"subf":       func(a, b any) float64 { return toFloat(a) - toFloat(b) },
	"mulf":       func(a, b any) float64 { return toFloat(a) * toFloat(b) },
	"divf":       func(a, b any) float64 { return toFloat(a) / toFloat(b) },
	"max":        func(a, b any) int64 { return max(int64(toFloat(a)), int64(toFloat(b))) },
	"min":        func(a, b any) int64 { return min(int64(toFloat(a)), int64(toFloat(b))) },
	"maxf":       func(a, b any) float64 { return math.Max(toFloat(a), toFloat(b)) },
	"minf":       func(a, b any) float64 { return math.Min(toFloat(a), toFloat(b)) },
	"ceil":       func(a any) float64 { return math.Ceil(toFloat(a)) },
	"floor":      func(a any) float64 { return math.Floor(toFloat(a)) },
	"round":      round,
	"fromJson":   fromJSON,
	"date":       func(layout string, t time.Time) string { return t.Format(layout) },
	"toDate":     func(layout, s string) time.Time { t, _ := time.Parse(layout, s); return t },
	"now":        time.Now,
}

// maxTemplateOutput bounds what one function call may build, so that a
// query cannot make a line of gigabytes: repeat 1000000000.
const maxTemplateOutput = 1 << 20

func repeat(n int, s string) (string, error) {
	if n <= 0 || s == "" {
		return "", nil
	}
	if n > maxTemplateOutput/len(s) {
		return "", fmt.Errorf("repeat: result longer than %d bytes", maxTemplateOutput)
	}
	return strings.Repeat(s, n), nil
}

// clampCount bounds the counts of indent and align.
func clampCount(n int) int { return min(max(n, 0), maxTemplateOutput) }

func b64dec(s string) string {
	if r := len(s) % 4; r == 2 || r == 3 {
		s += strings.Repeat("=", 4-r)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func durationSeconds(s string) (float64, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, err
	}
	return d.Seconds(), nil
}

// unixToTime reads a Unix time in days, seconds, milliseconds,
// microseconds or nanoseconds, told apart by the number of digits.
func unixToTime(s string) (time.Time, error) {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("unable to parse time '%v': %w", s, err)
	}
	switch len(s) {
	case 5:
		return time.Unix(i*86400, 0).UTC(), nil
	case 10:
		return time.Unix(i, 0).UTC(), nil
	case 13:
		return time.UnixMilli(i).UTC(), nil
	case 16:
		return time.UnixMicro(i).UTC(), nil
	case 19:
		return time.Unix(0, i).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("unable to parse time '%v': want 5, 10, 13, 16 or 19 digits", s)
}

func alignLeft(n int, s string) string {
	n = clampCount(n)
	if c := utf8.RuneCountInString(s); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return string([]rune(s)[:max(n, 0)])
}

func alignRight(n int, s string) string {
	n = clampCount(n)
	r := []rune(s)
	if len(r) < n {
		return strings.Repeat(" ", n-len(r)) + s
	}
	return string(r[len(r)-max(n, 0):])
}

func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || unicode.IsPunct(prev) && prev != '\'' {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

func trunc(n int, s string) string {
	switch {
	case n < 0 && len(s)+n > 0:
		return s[len(s)+n:]
	case n >= 0 && len(s) > n:
		return s[:n]
	}
	return s
}

func substr(start, end int, s string) string {
	if start < 0 {
		start = 0
	}
	if end < 0 || end > len(s) {
		end = len(s)
	}
	if start > end {
		return ""
	}
	return s[start:end]
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", min(clampCount(n), 1024))
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// defaultValue is Sprig's default: given unless it is missing or empty.
func defaultValue(d any, given ...any) any {
	if len(given) == 0 || given[0] == nil {
		return d
	}
	switch v := given[0].(type) {
	case string:
		if v == "" {
			return d
		}
	case bool:
		if !v {
			return d
		}
	case int:
		if v == 0 {
			return d
		}
	case float64:
		if v == 0 {
			return d
		}
	}
	return given[0]
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0
		}
		return f
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case float64:
		return v
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

func intDiv(a, b any) (int64, error) {
	d := int64(toFloat(b))
	if d == 0 {
		return 0, fmt.Errorf("division by zero")
	}
	return int64(toFloat(a)) / d, nil
}

func intMod(a, b any) (int64, error) {
	d := int64(toFloat(b))
	if d == 0 {
		return 0, fmt.Errorf("division by zero")
	}
	return int64(toFloat(a)) % d, nil
}

func round(a any, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(toFloat(a)*p) / p
}

func fromJSON(s string) (map[string]any, error) {
	var m map[string]any
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}
