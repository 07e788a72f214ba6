package model

import (
	"strings"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/logfmt"
)

// Loki 3 label conventions. service_name is the stream label Loki derives
// from a record's service; Vigil answers it as an alias of service, so
// queries written for either work. detected_level is the level Loki
// attaches to every line as structured metadata.
const (
	LabelServiceName   = "service_name"
	LabelDetectedLevel = "detected_level"
)

// LevelUnknown is the detected level of a line that names none.
const LevelUnknown = "unknown"

// levelKeys are the JSON and logfmt keys Loki reads a line's level from,
// in order of preference.
var levelKeys = []string{"level", "LEVEL", "Level", "log.level", "severity", "SEVERITY", "Severity", "SeverityText", "lvl", "LVL", "Lvl", "severity_text"}

// levelWords are the words Loki looks for in an unstructured line; the
// first one in the line wins.
var levelWords = []struct{ word, level string }{
	{"trace", "trace"}, {"debug", "debug"}, {"fatal", "fatal"}, {"critical", "critical"},
	{"error", "error"}, {"err", "error"}, {"warning", "warn"}, {"warn", "warn"}, {"info", "info"},
}

// DetectedLevel returns the detected_level of a line as Loki derives it:
// the record's level when it has one, else the value of a level key of a
// JSON or logfmt body, else the first level word of the line, else
// "unknown".
func DetectedLevel(level, line string) string {
	if level != "" {
		return normalizeDetectedLevel(level)
	}
	trimmed := strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(trimmed, "{") && strings.HasSuffix(trimmed, "}"):
		if v := jsonLevel(trimmed); v != "" {
			return normalizeDetectedLevel(v)
		}
	case strings.Contains(line, "="):
		if v := logfmtLevel(line); v != "" {
			return normalizeDetectedLevel(v)
		}
	}
	return levelFromWords(line)
}

func normalizeDetectedLevel(v string) string {
	switch strings.ToLower(v) {
	case "trace", "trc":
		return "trace"
	case "debug", "dbg":
		return "debug"
	case "info", "inf", "information":
		return "info"
	case "warn", "wrn", "warning":
		return "warn"
	case "error", "err":
		return "error"
	case "critical":
		return "critical"
	case "fatal":
		return "fatal"
	}
	return v
}

// jsonLevel returns the first string value, at any depth, under one of
// levelKeys.
func jsonLevel(line string) string {
	v, err := fastjson.Parse(line)
	if err != nil {
		return ""
	}
	return findLevel(v, 0)
}

func findLevel(v *fastjson.Value, depth int) string {
	o, err := v.Object()
	if err != nil || depth > 8 {
		return ""
	}
	var found string
	o.Visit(func(k []byte, x *fastjson.Value) {
		if found != "" {
			return
		}
		switch x.Type() {
		case fastjson.TypeString:
			for _, lk := range levelKeys {
				if string(k) == lk {
					found = string(x.GetStringBytes())
					return
				}
			}
		case fastjson.TypeObject:
			found = findLevel(x, depth+1)
		}
	})
	return found
}

// logfmtLevel returns the value of the most preferred level key.
func logfmtLevel(line string) string {
	best, bestRank := "", len(levelKeys)
	_ = logfmt.Parse(line, func(k, v string) {
		for i, lk := range levelKeys {
			if i < bestRank && strings.EqualFold(k, lk) {
				best, bestRank = v, i
			}
		}
	})
	return best
}

// levelFromWords returns the level of the earliest level word standing on
// its own in line (case-insensitive), or "unknown".
func levelFromWords(line string) string {
	lower := strings.ToLower(line)
	idx, guess := len(lower), LevelUnknown
	for _, w := range levelWords {
		pos := indexOfWord(lower, w.word)
		if pos == -1 || pos >= idx {
			continue
		}
		idx, guess = pos, w.level
		if idx == 0 {
			break
		}
	}
	return guess
}

func indexOfWord(s, word string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], word)
		if i < 0 {
			return -1
		}
		at := off + i
		if (at == 0 || strings.IndexByte(" \t\n[({\"'=|", s[at-1]) >= 0) &&
			(at+len(word) == len(s) || strings.IndexByte(" \t\n[]()}{:,!\"'=|", s[at+len(word)]) >= 0) {
			return at
		}
		off = at + 1
	}
}
