//go:build unix

package dump_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/sdk/dump"
)

// runWatched runs this test binary under dump.Watch, reporting to rc, as
// a child that dies of kind; it returns the watcher's exit code and
// standard error.
func runWatched(t *testing.T, rc *receiver, kind, spool string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrash+"="+kind, envSpool+"="+spool, envWatch+"="+rc.DSN(), "GOTRACEBACK=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("watcher of %s: %v, want an exit status; stderr:\n%s", kind, err, stderr.String())
	}
	return ee.ExitCode(), stderr.String()
}

// Under Watch, a fatal error is reported by the watcher with the
// runtime's exact message, and only once.
func TestWatchedFatalError(t *testing.T) {
	rc := newReceiver(t)
	spool := t.TempDir()
	code, stderr := runWatched(t, rc, "concurrent-map-writes", spool)
	if code != 2 || !strings.Contains(stderr, "fatal error: concurrent map writes") {
		t.Fatalf("exit %d, want 2 and the crash on the watcher's stderr:\n%s", code, stderr)
	}
	events, _ := rc.Snapshot()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1; stderr:\n%s", len(events), stderr)
	}
	for _, ev := range events {
		exc := path(ev, "exception", "values", -1)
		if path(exc, "type") != "fatal error" || path(exc, "value") != "concurrent map writes" || path(ev, "extra", "message_inferred") != nil {
			t.Errorf("got %v: %v (inferred: %v), want the exact fatal error: concurrent map writes", path(exc, "type"), path(exc, "value"), path(ev, "extra", "message_inferred"))
		}
		if got := lastInApp(path(exc, "stacktrace", "frames")); got != "mapWriter" {
			t.Errorf("newest in-app frame: got %q, want mapWriter", got)
		}
		if ev["release"] != "v1.2.3" {
			t.Errorf("release %v, want the child's v1.2.3", ev["release"])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(spool, "crash-*")); len(left) != 0 {
		t.Errorf("crash files left: %v", left)
	}
	rep, err := dump.New(dump.Options{DSN: rc.DSN(), SpoolDir: spool, Service: "crasher"})
	if err != nil {
		t.Fatal(err)
	}
	flush(t, rep)
	rep.Close()
	if events, _ := rc.Snapshot(); len(events) != 1 {
		t.Errorf("after the next start: %d events, want still 1", len(events))
	}
}

// A child killed by SIGKILL leaves no crash output; the watcher reports
// how it died.
func TestWatchedSigkill(t *testing.T) {
	rc := newReceiver(t)
	code, stderr := runWatched(t, rc, "sigkill", t.TempDir())
	if code != 128+9 {
		t.Fatalf("exit %d, want 137:\n%s", code, stderr)
	}
	events, _ := rc.Snapshot()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	for _, ev := range events {
		exc := path(ev, "exception", "values", -1)
		if path(exc, "type") != "signal" || !strings.HasPrefix(path(exc, "value").(string), "SIGKILL: killed") || ev["level"] != "fatal" {
			t.Errorf("got %v %v: %v, want a fatal signal SIGKILL", ev["level"], path(exc, "type"), path(exc, "value"))
		}
	}
}
