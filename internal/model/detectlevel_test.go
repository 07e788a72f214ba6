package model

import "testing"

func TestDetectedLevel(t *testing.T) {
	f := func(level, line, want string) {
		t.Helper()
		if got := DetectedLevel(level, line); got != want {
			t.Errorf("DetectedLevel(%q, %q): got %q; want %q", level, line, got, want)
		}
	}
	// The record's level wins, normalized as Loki does.
	f("warn", "ERROR in body", "warn")
	f("WARNING", "", "warn")
	f("err", "", "error")
	f("critical", "", "critical")
	f("notice", "", "notice")
	// JSON bodies: a level key at any depth.
	f("", `{"level":"ERROR","msg":"x"}`, "error")
	f("", `{"log":{"severity":"dbg"}}`, "debug")
	f("", ` {"msg":"no level here, but an error"} `, "error")
	f("", `{"level":42}`, "unknown")
	// logfmt bodies.
	f("", `ts=1 lvl=inf msg="started"`, "info")
	f("", `msg="x" Level=Warning`, "warn")
	// Plain lines: the first level word standing on its own.
	f("", "2024-05-01 [DEBUG] cache miss", "debug")
	f("", "request failed: error: timeout, then warn", "error")
	f("", "information only", "unknown")
	f("", "errors happen", "unknown")
	f("", "misc:error", "unknown")
	f("", "FATAL: out of memory", "fatal")
	f("", "", "unknown")
}

// FuzzDetectedLevel feeds arbitrary bodies (seeds in
// testdata/fuzz/FuzzDetectedLevel): every line gets a level, if only
// "unknown", and a record's own level always wins.
func FuzzDetectedLevel(f *testing.F) {
	f.Add("", `{"level":"info"}`)
	f.Fuzz(func(t *testing.T, level, line string) {
		got := DetectedLevel(level, line)
		if got == "" {
			t.Fatalf("DetectedLevel(%q, %q) is empty", level, line)
		}
		if level != "" && got != DetectedLevel(level, "") {
			t.Fatalf("DetectedLevel(%q, %q) = %q: the body overrode the level", level, line, got)
		}
	})
}
