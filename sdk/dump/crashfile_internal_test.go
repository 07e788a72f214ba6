package dump

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A crash file whose process is watched by a live watcher is left to the
// watcher; once the watcher is gone, the next start reports it.
func TestCrashFileOfWatchedProcess(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "crashes", "nil-map.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command(os.Args[0], "-test.run=^$")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	f := func(watcher int, wantReported int) {
		t.Helper()
		dir := t.TempDir()
		content := fmt.Sprintf("%s{\"pid\":1,\"watcher\":%d}\n%s", crashMetaPrefix, watcher, text)
		if err := os.WriteFile(filepath.Join(dir, "crash-1-1.txt"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := New(Options{DSN: "http://k@127.0.0.1:1/1", SpoolDir: dir, Service: "s", DisableCrashOutput: true,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n, err := r.ReportPreviousCrash()
		if err != nil || n != wantReported {
			t.Errorf("watcher %d: reported %d (%v), want %d", watcher, n, err, wantReported)
		}
	}
	f(os.Getppid(), 0)
	f(dead.Process.Pid, 1)
}
