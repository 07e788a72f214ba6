package dump

import (
	"bytes"
	"strings"
)

// EnvWatched is set, to the watching process's id, in the environment of a
// process Watch started.
const EnvWatched = "VIGIL_DUMP_WATCHED"

// maxWatchBytes bounds how much of the child's standard error the
// watching process keeps: the end, where a crash is.
const maxWatchBytes = 8 << 20

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max/2:]...)
	}
	return len(p), nil
}

// crashText finds, in the end of a process's standard error, the text the
// runtime printed as it died: from the "runtime: …" lines, "panic: …" or
// "fatal error: …" header (or a fatal signal's) to the end. It returns
// nil when there is none, or when it is not followed by goroutines (a
// line a program printed itself).
func crashText(stderr []byte) []byte {
	lines := strings.SplitAfter(string(stderr), "\n")
	isHeader := func(l string) bool {
		return strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") || isSignalHeader(strings.TrimRight(l, "\n"))
	}
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if isHeader(lines[i]) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil
	}
	for start > 0 {
		l := lines[start-1]
		if !isHeader(l) && !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "runtime: ") && !strings.HasPrefix(l, "[signal ") {
			break
		}
		start--
	}
	text := []byte(strings.Join(lines[start:], ""))
	if c, err := ParseCrash(text); err != nil || len(c.Goroutines) == 0 {
		return nil
	}
	return bytes.Clone(text)
}
