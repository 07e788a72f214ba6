package files

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
)

// logWriter is an application writing numbered lines to a log file that
// something rotates under its lock.
type logWriter struct {
	t      *testing.T
	path   string
	header string // written first in every new file, like a banner

	mu     sync.Mutex
	f      *os.File
	seq    int
	gen    int   // which file generation the lines go to
	fileOf []int // generation of each seq
}

func newLogWriter(t *testing.T, path, header string) *logWriter {
	w := &logWriter{t: t, path: path, header: header}
	w.open()
	return w
}

func (w *logWriter) open() {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Error(err)
		return
	}
	w.f = f
	if w.header != "" {
		_, _ = f.WriteString(w.header)
	}
}

func (w *logWriter) write() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := fmt.Fprintln(w.f, seqLine(w.seq)); err != nil {
		w.t.Error(err)
	}
	w.fileOf = append(w.fileOf, w.gen)
	w.seq++
}

// run writes continuously, in bursts of 20 lines at most every 200µs,
// until stop is closed or max lines were written; done waits for the end
// and returns the line count.
func (w *logWriter) run(stop <-chan struct{}, max int) (done func() int) {
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; i < max; i++ {
			select {
			case <-stop:
				return
			default:
			}
			w.write()
			if i%20 == 0 {
				time.Sleep(200 * time.Microsecond)
			}
		}
	}()
	return func() int {
		<-finished
		w.mu.Lock()
		defer w.mu.Unlock()
		_ = w.f.Close()
		return w.seq
	}
}

// waitWritten waits until the writer wrote n more lines.
func (w *logWriter) waitWritten(t *testing.T, n int) {
	t.Helper()
	w.mu.Lock()
	want := w.seq + n
	w.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		w.mu.Lock()
		seq := w.seq
		w.mu.Unlock()
		if seq >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer wrote %d lines in 60s; want %d", seq-want+n, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitGen polls until a line written to file generation gen was delivered,
// that is until the tailer found that file. Rotating again sooner could move
// a file away before any rescan saw it at its watched path: a limit of
// polling, irrelevant to real rotation intervals.
func (w *logWriter) waitGen(tl *tailer, c *collector, gen int) {
	tl.t.Helper()
	tl.pollUntil(c, fmt.Sprintf("a line of file %d", gen), func(recs []model.LogRecord) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, r := range recs {
			if s, ok := seqOf(r.Message); ok && s < len(w.fileOf) && w.fileOf[s] == gen {
				return true
			}
		}
		return false
	})
}

// checkOrderPerFile asserts that lines of one file generation arrived in order.
func (w *logWriter) checkOrderPerFile(t *testing.T, recs []model.LogRecord) {
	t.Helper()
	last := map[int]int{}
	for _, r := range recs {
		s, ok := seqOf(r.Message)
		if !ok || s >= len(w.fileOf) {
			continue
		}
		g := w.fileOf[s]
		if prev, ok := last[g]; ok && s < prev {
			t.Errorf("file %d: seq %d delivered after seq %d", g, s, prev)
		}
		last[g] = s
	}
}

func TestRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	// Every file starts with the same banner, so all share a fingerprint.
	w := newLogWriter(t, path, "# app log, format v1\n")
	opts := testOptions(t, path)
	var c collector
	tl := start(t, opts, c.sink)

	stop := make(chan struct{})
	done := w.run(stop, 1<<30)
	for r := 1; r <= 6; r++ {
		w.waitWritten(t, 100)
		w.waitGen(tl, &c, r-1)
		// Every other rotation happens while a poll reads.
		var polled <-chan struct{}
		if r%2 == 0 {
			polled = tl.request(time.Time{})
		}
		w.mu.Lock()
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		w.mu.Unlock()
		// The application keeps writing to the renamed file until it reopens.
		w.waitWritten(t, 20)
		w.mu.Lock()
		_ = w.f.Close()
		w.gen++
		w.open()
		w.mu.Unlock()
		if polled != nil {
			tl.wait(polled)
		}
	}
	w.waitWritten(t, 100)
	close(stop)
	n := done()
	tl.pollUntil(&c, "all lines", countSeqs(n))
	tl.poll() // anything sent twice would show up now
	recs := c.snapshot()
	checkOnce(t, recs, n)
	w.checkOrderPerFile(t, recs)
	banners := 0
	for _, r := range recs {
		if r.Message == "# app log, format v1" {
			banners++
		}
	}
	if banners != 7 {
		t.Errorf("got %d banner lines, want 7 (one per file)", banners)
	}
	t.Logf("%d lines over 7 files", n)
}

func TestCopyTruncateRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newLogWriter(t, path, "")
	// The copies are watched too: lines the tailer had not read when the
	// file was truncated are read from the copy, continuing at the offset
	// reached in the original, with the same ids.
	opts := testOptions(t, path+"*")
	var c collector
	tl := start(t, opts, c.sink)

	stop := make(chan struct{})
	done := w.run(stop, 1<<30)
	for r := 1; r <= 6; r++ {
		// The tailer reads part of the file; the writer goes on, so the
		// copy holds lines the tailer has not read.
		w.waitWritten(t, 100)
		tl.poll()
		w.waitWritten(t, 100)
		// Every other truncation happens while a poll reads.
		var polled <-chan struct{}
		if r%2 == 0 {
			polled = tl.request(time.Time{})
		}
		w.mu.Lock() // copy and truncate with no write in between
		copyFile(t, path, fmt.Sprintf("%s.%d", path, r))
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		w.gen++
		w.mu.Unlock()
		if polled != nil {
			tl.wait(polled)
		}
	}
	w.waitWritten(t, 100)
	close(stop)
	n := done()
	tl.pollUntil(&c, "all lines", countSeqs(n))
	tl.poll() // anything sent twice would show up now
	recs := c.snapshot()
	checkOnce(t, recs, n)
	w.checkOrderPerFile(t, recs)
	t.Logf("%d lines over 6 truncations", n)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNewContentAtKnownInode replaces a file's content while the tailer is
// stopped, at the same inode (rewritten in place) or, usually, a reused one
// (deleted and recreated). The new content is longer than the saved offset:
// resuming by inode would skip its first lines.
func TestNewContentAtKnownInode(t *testing.T) {
	f := func(name, header string, replace func(t *testing.T, path string)) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			opts := testOptions(t, path)
			write := func(from, to int) { // a new file each time, header first
				s := header
				for i := from; i < to; i++ {
					s += seqLine(i) + "\n"
				}
				appendFile(t, path, s)
			}
			write(0, 100)
			before := inode(t, path)
			var c collector
			tl := start(t, opts, c.sink)
			tl.poll()
			if recs := c.snapshot(); !countSeqs(100)(recs) {
				t.Fatalf("first file: got %d records; want 100", len(recs))
			}
			tl.stop()

			replace(t, path)
			write(100, 400)
			if after := inode(t, path); after == before {
				t.Logf("inode %d reused", after)
			} else {
				t.Logf("inode not reused (%d, then %d)", before, after)
			}
			start(t, opts, c.sink).poll()
			checkOnce(t, c.snapshot(), 400)
		})
	}
	truncate := func(t *testing.T, path string) {
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	f("rewritten in place", "", truncate)
	f("deleted and recreated", "", remove)
	// The same first line in both: the fingerprint matches, the check
	// prefix does not.
	f("rewritten in place with a banner", "# app log v1\n", truncate)
	f("deleted and recreated with a banner", "# app log v1\n", remove)
}

func inode(t *testing.T, path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := fileIdentity(fi, path)
	return id.ino
}

// TestDeletedWhileOpen deletes a file the tailer has open, with lines it
// may not have read yet: they are drained, then the file is closed.
func TestDeletedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	opts := testOptions(t, path)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	var c collector
	tl, err := New(opts, c.sink)
	if err != nil {
		t.Fatal(err)
	}
	d := runTailer(t, tl)

	var s string
	for i := range 200 {
		s += seqLine(i) + "\n"
	}
	appendFile(t, path, s[:len(s)/2])
	d.poll()
	if got := len(c.snapshot()); got != 100 {
		t.Fatalf("got %d records; want the first 100", got)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(s[len(s)/2:]) // written after the unlink
	_ = f.Close()
	d.poll()
	checkOnce(t, c.snapshot(), 200)
	if got := gaugeValue(t, reg, "vigil_collector_files_files_watched"); got != 1 {
		t.Errorf("within the drain grace period: %v files watched; want the deleted one still open", got)
	}
	d.pollAt(time.Now().Add(tl.drainGrace))
	if got := gaugeValue(t, reg, "vigil_collector_files_files_watched"); got != 0 {
		t.Errorf("after the drain grace period: %v files watched; want the deleted file closed", got)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("gauge %s not registered", name)
	return 0
}

// TestCopyTruncateRacingPoll makes a copytruncate rotation happen at the
// points of a poll where it races the poll's decisions about the original
// and its copy: whether the copy is found while it is being written or
// complete, and the truncation noticed before, while or after the copy is
// looked at, the copy continues the original at the offset the tailer
// reached, with the same ids, and no line is delivered twice or lost.
func TestCopyTruncateRacingPoll(t *testing.T) {
	const (
		read   = 200 // lines the tailer read before the rotation
		unread = 50  // lines written before the copy, not read yet
	)
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString(seqLine(i) + "\n")
		}
		return b.String()
	}
	const (
		beforePoll = "before the poll"
		afterPoll  = "after the poll"
	)
	for _, tc := range []struct {
		name   string
		point  string // where the rest of the copy and the truncation happen
		copied int    // lines in the copy when the poll starts
		after  int    // lines written to the truncated file
	}{
		{"rotated before the poll", beforePoll, 0, 3},
		// The copy is held as a copy of the open original, then the
		// truncation is noticed at the next poll.
		{"copy found complete, truncated after the poll", afterPoll, read + unread, 3},
		{"copy found while written, completed and truncated after the poll", afterPoll, 40, 3},
		// The scan stats the copy while it is being written (its head too:
		// shorter than the check prefix of the original); the copy is
		// completed and the original truncated before the copy's identity
		// is decided, so the truncation is noticed while deciding it.
		{"copy found while written, completed and truncated before it is matched", hookCandidatesRead, 40, 3},
		{"copy found complete, truncated before it is matched", hookCandidatesRead, read + unread, 3},
		// The copy is complete; the original is truncated and written again
		// just after it was checked, before it is compared with the copy.
		{"truncated just after the original was checked against the copy", hookOpenChecked, read + unread, 3},
		// While the original is read: the read finds its end, or new
		// content at the old offset, which must not be taken for the old.
		{"truncated while the original is read", hookReading, read + unread, 3},
		{"truncated and written past the read position while the original is read", hookReading, read + unread, read + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			copyPath := path + ".1"
			opts := testOptions(t, path+"*")
			var c collector
			tl, err := New(opts, c.sink)
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu    sync.Mutex
				race  func() // run once when a poll reaches tc.point
				fired bool
			)
			tl.hook = func(point string) { // in the tailer's goroutine
				mu.Lock()
				fn := race
				if point == tc.point {
					race = nil
				} else {
					fn = nil
				}
				mu.Unlock()
				if fn != nil {
					fn()
				}
			}
			d := runTailer(t, tl)

			appendFile(t, path, lines(0, read))
			d.poll()
			if got := c.snapshot(); !countSeqs(read)(got) || len(got) != read {
				t.Fatalf("got %d records before the rotation; want %d", len(got), read)
			}
			appendFile(t, path, lines(read, read+unread))
			if tc.copied > 0 {
				appendFile(t, copyPath, lines(0, tc.copied))
			}
			rotate := func() {
				fired = true
				appendFile(t, copyPath, lines(tc.copied, read+unread))
				if err := os.Truncate(path, 0); err != nil {
					t.Error(err)
				}
				appendFile(t, path, lines(read+unread, read+unread+tc.after))
			}
			switch tc.point {
			case beforePoll:
				rotate()
				d.poll()
			case afterPoll:
				d.poll()
				rotate()
			default:
				mu.Lock()
				race = rotate
				mu.Unlock()
				d.poll()
			}
			mu.Lock()
			ok := fired
			mu.Unlock()
			if !ok {
				t.Fatalf("the poll did not reach %q", tc.point)
			}
			n := read + unread + tc.after
			d.pollUntil(&c, "all lines", countSeqs(n))
			d.poll() // anything sent twice would show up now
			recs := c.snapshot()
			checkOnce(t, recs, n)
			if t.Failed() {
				return
			}

			// Whether read from the original or its copy, every line of
			// the original content carries the original's id.
			firstLine := seqLine(0) + "\n"
			for _, r := range recs {
				s, ok := seqOf(r.Message)
				if !ok || s >= read+unread {
					continue
				}
				if want := wantID(testHost, firstLine, int64(s*len(firstLine))); r.ID != want {
					p, _ := r.Attr(attrFilePath)
					t.Fatalf("seq %d (read from %s): got id %s, want %s (the original's)", s, p, r.ID, want)
				}
			}
		})
	}
}
