package files

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// TestRestart stops the tailer mid-stream while a writer keeps writing,
// rolls its offsets file back to an earlier save (a crash between a batch
// being accepted and its offsets being saved), and starts a new tailer on
// the same state: nothing is lost, and what is sent again has the ids it had
// the first time, so deduplicating by id leaves every line once. A clean
// restart after that sends nothing twice.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	opts := testOptions(t, path)
	opts.BatchMaxLines = 50
	stateFile := filepath.Join(opts.StateDir, stateFileName)
	w := newLogWriter(t, path, "")
	stopWriter := make(chan struct{})
	writerDone := w.run(stopWriter, 1<<30)

	// First run: keep a copy of the offsets file as it was at batch 5.
	var first collector
	var saved []byte
	batches := 0
	first.fail = func([]model.LogRecord) error {
		if batches++; batches == 5 {
			saved, _ = os.ReadFile(stateFile)
		}
		return nil
	}
	tl := start(t, opts, first.sink)
	w.waitWritten(t, 1000)
	// The writer waits while the poll reads to the end (under load it
	// could outrun the tailer), then writes on while the tailer is down
	// and the second one runs. It has no line limit: a limited writer
	// could finish during a slow first run and not write while the second
	// one runs.
	w.mu.Lock()
	tl.poll()
	w.mu.Unlock()
	if got := len(first.snapshot()); got < 1000 {
		t.Fatalf("first run: got %d records; want at least the 1000 lines written before the poll", got)
	}
	tl.stop()
	if len(saved) == 0 {
		t.Fatal("no offsets saved by batch 5")
	}
	if err := os.WriteFile(stateFile, saved, 0o640); err != nil {
		t.Fatal(err)
	}

	// Second run, after the "crash".
	var second collector
	tl = start(t, opts, second.sink)
	w.waitWritten(t, 100) // while the second tailer runs
	close(stopWriter)
	n := writerDone()
	tl.pollUntil(&second, "the rest", func(r []model.LogRecord) bool {
		return countSeqs(n)(append(first.snapshot(), r...))
	})
	tl.stop()

	all := append(first.snapshot(), second.snapshot()...)
	ids := map[int]model.RecordID{}
	resent := 0
	for _, r := range all {
		s, ok := seqOf(r.Message)
		if !ok {
			continue
		}
		if id, dup := ids[s]; dup {
			resent++
			if id != r.ID {
				t.Fatalf("seq %d sent again with id %s, first with %s", s, r.ID, id)
			}
		}
		ids[s] = r.ID
	}
	if resent == 0 {
		t.Fatal("nothing was sent again after rolling the offsets back; the test proves nothing")
	}
	checkOnce(t, dedupByID(all), n)
	t.Logf("%d lines, %d sent again after the crash", n, resent)

	// A clean restart resumes exactly where the last run stopped.
	var b strings.Builder
	for i := n; i < n+100; i++ {
		b.WriteString(seqLine(i) + "\n")
	}
	appendFile(t, path, b.String())
	var third collector
	tl = start(t, opts, third.sink)
	tl.poll()
	tl.stop()
	recs := third.snapshot()
	if len(recs) != 100 {
		t.Fatalf("clean restart: got %d records, want the 100 new ones", len(recs))
	}
	if s, _ := seqOf(recs[0].Message); s != n {
		t.Fatalf("clean restart: first record is seq %d, want %d", s, n)
	}
}

func dedupByID(recs []model.LogRecord) []model.LogRecord {
	seen := map[model.RecordID]bool{}
	var out []model.LogRecord
	for _, r := range recs {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out
}

// TestRestartAfterRotationWhileStopped rotates the file by renaming while
// no tailer runs: the rotated file's unread lines are drained from its
// saved offset, and the new file is read from its start.
func TestRestartAfterRotationWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	opts := testOptions(t, path)
	write := func(from, to int) {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintln(&b, seqLine(i))
		}
		appendFile(t, path, b.String())
	}
	write(0, 100)
	var c collector
	tl := start(t, opts, c.sink)
	tl.poll()
	if recs := c.snapshot(); !countSeqs(100)(recs) {
		t.Fatalf("first lines: got %d records; want 100", len(recs))
	}
	tl.stop()

	write(100, 200)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(200, 300)
	start(t, opts, c.sink).poll()
	checkOnce(t, c.snapshot(), 300)
}
