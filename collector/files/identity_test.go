package files

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/xxh3"
)

func TestServiceFromPath(t *testing.T) {
	f := func(path, want string) {
		t.Helper()
		if got := ServiceFromPath(path); got != want {
			t.Errorf("ServiceFromPath(%q): got %q, want %q", path, got, want)
		}
	}
	f("/var/log/api.log", "api")
	f("api.log.1", "api")
	f("api.log.2.gz", "api")
	f("api.log-20240131", "api")
	f("api-2024-01-31.log", "api")
	f("api_20240131T1200.log", "api")
	f("billing-worker.log", "billing-worker")
	f("api-2.log", "api-2")
	f("syslog", "syslog")
	f(".hidden.log", "hidden")
}

func TestFingerprintLen(t *testing.T) {
	f := func(head string, want int) {
		t.Helper()
		if got := fingerprintLen([]byte(head)); got != want {
			t.Errorf("fingerprintLen(%.20q… %d bytes): got %d, want %d", head, len(head), got, want)
		}
	}
	f("", 0)
	f("partial first line", 0)
	f("first\nsecond\n", 6)
	f(strings.Repeat("x", 1023), 0)
	f(strings.Repeat("x", 1024), 1024)
	f(strings.Repeat("x", 1023)+"\n", 1024)
	f(strings.Repeat("x", 2000)+"\n", 1024)
}

func TestGlob(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a.log", "b.txt", "x/c.log", "x/y/d.log", "x/y/z/e.log", "x/y/z/f.txt"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		appendFile(t, p, "x\n")
	}
	f := func(pattern string, want ...string) {
		t.Helper()
		got, err := glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			got[i], _ = filepath.Rel(dir, got[i])
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("glob(%q): got %q, want %q", pattern, got, want)
		}
	}
	f("*.log", "a.log")
	f("**/*.log", "a.log", "x/c.log", "x/y/d.log", "x/y/z/e.log")
	f("x/**/*.log", "x/c.log", "x/y/d.log", "x/y/z/e.log")
	f("x/**/z/*", "x/y/z/e.log", "x/y/z/f.txt")
	f("*/y/**/*.txt", "x/y/z/f.txt")
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC)
	fp := fingerprint([]byte("first line\n"))
	e := &entry{key: s.uniqueKey(fp, fileID{1, 2}), fp: fp, check: 42, checkLen: 11, offset: 1234,
		path: "/var/log/app.log", id: fileID{1, 2}, open: true, seen: now}
	s.entries[e.key] = e
	// A second file with the same first line gets a key of its own.
	e2 := &entry{key: s.uniqueKey(fp, fileID{1, 3}), fp: fp, check: 43, checkLen: 4096, offset: 99,
		path: "/var/log/app.log.1", id: fileID{1, 3}, seen: now}
	if e2.key == e.key || e.key != fp {
		t.Fatalf("got keys %s and %s, want the fingerprint %s and another", e.key, e2.key, fp)
	}
	s.entries[e2.key] = e2
	if err := s.save(now); err != nil {
		t.Fatal(err)
	}
	s2, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*entry{e, e2} {
		got := s2.entries[want.key]
		if got == nil || *got != *want {
			t.Errorf("entry %s: got %+v, want %+v", want.key, got, want)
		}
	}
	// Gone for over an hour: forgotten, and its key is not handed out again.
	s2.expire(now.Add(2 * time.Hour))
	if len(s2.entries) != 0 {
		t.Fatalf("got %d entries after expiry, want 0", len(s2.entries))
	}
	if k := s2.uniqueKey(fp, fileID{1, 4}); k == e.key || k == e2.key {
		t.Errorf("a retired key was handed out again")
	}

	if err := os.WriteFile(filepath.Join(dir, stateFileName), []byte("{"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(dir); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Errorf("corrupt offsets file: got error %v, want one saying how to recover", err)
	}
}

// TestCheckContent: an open file's content is checked against its entry
// before its lines are trusted; appending is the only change that keeps it.
func TestCheckContent(t *testing.T) {
	const orig = "# banner\nline 1\nline 2\n"
	f := func(name string, change func(path string), wantReplaced bool) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "app.log")
		appendFile(t, path, orig)
		osf, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer osf.Close()
		fpLen := fingerprintLen([]byte(orig))
		e := &entry{fp: fingerprint([]byte(orig[:fpLen])), check: xxh3.Hash([]byte(orig)), checkLen: int64(len(orig))}
		fl := &file{f: osf, ent: e, fpLen: fpLen, path: path}
		fl.seek(int64(len(orig))) // everything read
		change(path)
		replaced, err := fl.checkContent(make([]byte, checkMax))
		if err != nil {
			t.Fatal(err)
		}
		if replaced != wantReplaced {
			t.Errorf("%s: got replaced=%v, want %v", name, replaced, wantReplaced)
		}
	}
	rewrite := func(s string) func(string) {
		return func(path string) {
			if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	f("unchanged", func(string) {}, false)
	f("appended", func(p string) { appendFile(t, p, "line 3\n") }, false)
	f("truncated", rewrite(""), true)
	f("truncated, rewritten longer", rewrite("other first line\n"+strings.Repeat("more\n", 20)), true)
	f("same first line, rewritten longer", rewrite("# banner\n"+strings.Repeat("more\n", 20)), true)
	f("same content, rewritten longer", rewrite(orig+"line 3\n"), false)
}
