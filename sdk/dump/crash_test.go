package dump_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/sdk/dump"
	"github.com/vigilhq/vigil/sdk/dump/dumptest"
)

const testPkg = "github.com/vigilhq/vigil/sdk/dump_test."

// runChild runs this test binary as a child that dies of kind, with its
// crash output going to spool, and returns what it printed on stderr.
func runChild(t *testing.T, kind, spool string) []byte {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrash+"="+kind, envSpool+"="+spool, "GOTRACEBACK=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("child %s: %v, want exit status 2; stderr:\n%s", kind, err, stderr.String())
	}
	out := []byte(stderr.String())
	if os.Getenv("VIGIL_UPDATE_TESTDATA") == "1" {
		if err := os.WriteFile(filepath.Join("testdata", "crashes", kind+".txt"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// topInApp is the newest frame of the test package in a goroutine.
func topInApp(g dump.Goroutine) string {
	for _, f := range g.Frames {
		if strings.HasPrefix(f.Function, testPkg) {
			return strings.TrimPrefix(f.Function, testPkg)
		}
	}
	return ""
}

func TestParseCrashOfDyingChildren(t *testing.T) {
	tests := []struct {
		kind, wantKind, wantMessage, wantTop string
	}{
		{"concurrent-map-writes", "fatal error", "concurrent map writes", "mapWriter"},
		{"nil-map", "panic", "assignment to entry in nil map", "crashNilMap"},
		{"stack-overflow", "fatal error", "stack overflow", "recurse"},
		{"goroutine-panic", "panic", "flush cart: disk on fire", "goroutinePanics"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			out := runChild(t, tt.kind, t.TempDir())
			c, err := dump.ParseCrash(out)
			if err != nil {
				t.Fatalf("ParseCrash: %v\n%s", err, out)
			}
			if c.Kind != tt.wantKind || c.Message != tt.wantMessage {
				t.Errorf("got %q %q; want %q %q", c.Kind, c.Message, tt.wantKind, tt.wantMessage)
			}
			if len(c.Goroutines) < 2 {
				t.Fatalf("got %d goroutines, want the crashed one and the parked worker at least:\n%s", len(c.Goroutines), out)
			}
			if got := topInApp(c.Goroutines[0]); got != tt.wantTop {
				t.Errorf("top in-app frame of the crashed goroutine %d: got %q, want %q", c.Goroutines[0].ID, got, tt.wantTop)
			}
			for _, g := range c.Goroutines {
				for _, f := range g.Frames {
					if f.Function == "" || f.File == "" || f.Line == 0 {
						t.Errorf("goroutine %d: incomplete frame %+v", g.ID, f)
					}
				}
			}
			parked := findGoroutine(c, "parkedWorker")
			if parked == nil {
				t.Fatalf("no goroutine in parkedWorker:\n%s", out)
			}
			if parked.State != "chan receive" || parked.CreatedBy == nil || parked.CreatorID != 1 ||
				!strings.HasSuffix(parked.CreatedBy.Function, "runCrashChild") || parked.CreatedBy.Line == 0 {
				t.Errorf("parked worker: got %+v, want state chan receive, created by runCrashChild in goroutine 1", *parked)
			}
			if tt.kind == "stack-overflow" {
				if !c.Goroutines[0].Elided || len(c.Runtime) == 0 {
					t.Errorf("stack overflow: got elided=%v runtime=%q, want elided frames and the runtime's messages", c.Goroutines[0].Elided, c.Runtime)
				}
			}
			if tt.kind == "goroutine-panic" {
				if g := c.Goroutines[0]; g.CreatedBy == nil || !strings.HasSuffix(g.CreatedBy.Function, "crashGoroutinePanic") {
					t.Errorf("panicking goroutine: created by %+v, want crashGoroutinePanic", g.CreatedBy)
				}
			}
		})
	}
}

func findGoroutine(c dump.Crash, fn string) *dump.Goroutine {
	for i, g := range c.Goroutines {
		if topInApp(g) == fn {
			return &c.Goroutines[i]
		}
	}
	return nil
}

// A process that dies of a fatal runtime error or an unrecovered panic is
// reported once, by the next process using the same spool directory.
func TestCrashReportedOnNextStart(t *testing.T) {
	tests := []struct {
		kind string
		// wantValues are the values accepted: the runtime writes the
		// "fatal error: …" line to stderr only (golang/go#76859), so the
		// message is inferred from the stack until it is fixed.
		wantType, wantMechanism, wantTop string
		wantValues                       []string
	}{
		{"concurrent-map-writes", "fatal error", "fatal", "mapWriter", []string{"concurrent map access", "concurrent map writes"}},
		{"stack-overflow", "fatal error", "fatal", "recurse", []string{"stack overflow"}},
		{"goroutine-panic", "panic", "panic", "goroutinePanics", []string{"flush cart: disk on fire"}},
		{"nil-map", "panic", "panic", "crashNilMap", []string{"assignment to entry in nil map"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			rc := newReceiver(t)
			spool := t.TempDir()
			runChild(t, tt.kind, spool)

			start := func() {
				rep, err := dump.New(dump.Options{
					DSN: rc.DSN(), SpoolDir: spool, Service: "crasher", Grade: 2, Env: "test", Version: "v1.3.0",
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := rep.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if err := rep.Close(); err != nil {
					t.Fatal(err)
				}
			}
			start()
			events, _ := rc.Snapshot()
			if len(events) != 1 {
				t.Fatalf("got %d events, want 1", len(events))
			}
			for _, ev := range events {
				exc := path(ev, "exception", "values", -1)
				if got := path(exc, "type"); got != tt.wantType {
					t.Errorf("exception type: got %v, want %s", got, tt.wantType)
				}
				if got, _ := path(exc, "value").(string); !slices.Contains(tt.wantValues, got) {
					t.Errorf("exception value: got %q, want one of %q", got, tt.wantValues)
				}
				if m := path(exc, "mechanism"); path(m, "type") != tt.wantMechanism || path(m, "handled") != false {
					t.Errorf("mechanism: got %v, want %s, handled false", m, tt.wantMechanism)
				}
				if got := lastInApp(path(exc, "stacktrace", "frames")); got != tt.wantTop {
					t.Errorf("newest in-app frame: got %q, want %s", got, tt.wantTop)
				}
				if ev["level"] != "fatal" || ev["release"] != "v1.2.3" || path(ev, "tags", "version") != "v1.2.3" {
					t.Errorf("level %v, release %v, version tag %v: want fatal and the crashed process's v1.2.3",
						ev["level"], ev["release"], path(ev, "tags", "version"))
				}
				threads, _ := path(ev, "threads", "values").([]any)
				if len(threads) < 2 || path(threads[0], "crashed") != true {
					t.Errorf("got %d threads, first crashed=%v; want every goroutine, the crashed first", len(threads), path(threads, 0, "crashed"))
				}
			}
			// Reported once: the next start finds nothing more.
			start()
			if events, _ := rc.Snapshot(); len(events) != 1 {
				t.Errorf("after a second start: got %d events, want still 1", len(events))
			}
		})
	}
}

// A panic the SDK reported and re-panicked kills the process; the next
// start delivers the report and does not report the crash a second time.
func TestRepanicReportedOnce(t *testing.T) {
	rc := newReceiver(t)
	spool := t.TempDir()
	out := runChild(t, "repanic", spool)
	if c, err := dump.ParseCrash(out); err != nil || !c.Panics[len(c.Panics)-1].Repanicked {
		t.Fatalf("child's crash: %+v, %v; want a repanicked panic", c.Panics, err)
	}
	rep, err := dump.New(dump.Options{DSN: rc.DSN(), SpoolDir: spool, Service: "crasher"})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	flush(t, rep)
	events, _ := rc.Snapshot()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	for _, ev := range events {
		if ev["level"] != "error" || path(ev, "exception", "values", -1, "value") != "flush cart: disk on fire" {
			t.Errorf("got level %v, value %v; want the recovered report", ev["level"], path(ev, "exception", "values", -1, "value"))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(spool, "crash-*")); len(left) != 1 {
		t.Errorf("crash files left: %v, want only the new process's", left)
	}
}

// lastInApp returns the function of the newest in-app frame of Sentry
// frames, without the test package's name.
func lastInApp(frames any) string {
	return strings.TrimPrefix(dumptest.LastInApp(frames), "dump_test.")
}
