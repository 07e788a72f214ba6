//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fileWriter appends numbered lines to a log file and rotates it the two
// ways logrotate does, under a lock so that rotation and writing never
// interleave mid-line.
type fileWriter struct {
	mu   sync.Mutex
	dir  string
	path string
	f    *os.File
	n    int // lines written
	rot  int
	// start is n when the current app.log was created.
	start int
}

func newFileWriter(t *testing.T, dir string) *fileWriter {
	w := &fileWriter{dir: dir, path: filepath.Join(dir, "app.log")}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w.f = f
	return w
}

func (w *fileWriter) write(k int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	bw := bufio.NewWriter(w.f)
	for i := 0; i < k; i++ {
		w.n++
		level := []string{"info", "warn", "error", "debug"}[w.n%4]
		fmt.Fprintf(bw, "level=%s msg=\"file line\" seq=file-%07d pad=%s\n", level, w.n, strings.Repeat("x", 60))
	}
	return bw.Flush()
}

func (w *fileWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// rotateRename moves app.log aside and starts a new app.log.
func (w *fileWriter) rotateRename() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rot++
	if err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, w.rot)); err != nil {
		return err
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	old := w.f
	w.f = f
	w.start = w.n
	return old.Close()
}

// rotateCopyTruncate copies app.log aside and truncates it in place. Lines
// written between the copy and the truncation would be lost by any tailer;
// the lock rules that out, as it is ruled out for the test's purposes.
func (w *fileWriter) rotateCopyTruncate() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rot++
	src, err := os.Open(w.path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(fmt.Sprintf("%s-copy%d", w.path, w.rot))
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	w.start = w.n
	return w.f.Truncate(0)
}

func (w *fileWriter) currentStart() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.start
}

// httpPusher sends numbered NDJSON lines with explicit timestamps, retrying a
// request until it is accepted, as a well-behaved client does.
type httpPusher struct {
	sent atomic.Int64
}

func (h *httpPusher) push(p *proc, client, from, n int) error {
	var b strings.Builder
	base := time.Now().UnixNano()
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"timestamp":%d,"service":"web-%d","level":"info","host":"h%d","message":"http line seq=http-%d-%07d","attributes":{"client":"%d"}}`+"\n",
			base+int64(i), client, client, client, i, client)
	}
	body := []byte(b.String())
	for attempt := 0; attempt < 600; attempt++ {
		code, _, err := p.tryPost("/api/v1/logs", "application/x-ndjson", body)
		if err == nil && code == 200 {
			h.sent.Add(int64(n))
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("client %d: batch from %d never accepted", client, from)
}

// TestLogsEndToEnd streams lines through file tailing (with rename and
// copytruncate rotations) and HTTP at once, kills vigil with SIGKILL in the
// middle, restarts it, and checks every line is queryable exactly once with
// its labels.
func TestLogsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"),
		"--collector.files", filepath.Join(logDir, "*.log"),
		"--query.max-entries", "200000")
	w := newFileWriter(t, logDir)
	var pusher httpPusher

	const clients, perClient, batch = 4, 6000, 200
	const fileChunks, chunk = 60, 250
	fileCount := func() int { return p.countLines(`{service="app"} |= "seq=file-"`, 200000) }
	waitFileCaughtUp := func() {
		want := w.written()
		eventually(t, 60*time.Second, "file lines queryable", func() (bool, string) {
			got := fileCount()
			return got >= want, fmt.Sprintf("%d of %d", got, want)
		})
	}

	// Phase 1: both streams, with rotations of the file; phase 2 starts
	// after vigil was killed and restarted.
	runPhase := func(clientFrom, clientTo int, chunks []int, rotate map[int]string) {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for i := clientFrom; i < clientTo; i += batch {
					if err := pusher.push(p, c, i, batch); err != nil {
						errs <- err
						return
					}
				}
			}(c)
		}
		for _, k := range chunks {
			if err := w.write(chunk); err != nil {
				t.Fatal(err)
			}
			switch rotate[k] {
			case "rename":
				// A file renamed away before the tailer ever saw it cannot be
				// followed (its new name is outside the pattern); wait until
				// the current file was discovered, not until it was read.
				from := w.currentStart()
				eventually(t, 30*time.Second, "current file discovered", func() (bool, string) {
					got := fileCount()
					return got > from, fmt.Sprintf("%d lines, file starts at %d", got, from)
				})
				if err := w.rotateRename(); err != nil {
					t.Fatal(err)
				}
			case "kill":
				p.kill()
				if err := w.write(chunk); err != nil { // written while vigil is down
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond)
				p.restart()
			case "copytruncate":
				// A tailer cannot read what is truncated before it read it;
				// let it catch up first, as logrotate's delay does.
				waitFileCaughtUp()
				if err := w.rotateCopyTruncate(); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	half := fileChunks / 2
	var first, second []int
	for k := 0; k < fileChunks; k++ {
		if k < half {
			first = append(first, k)
		} else {
			second = append(second, k)
		}
	}
	runPhase(0, perClient/2, first, map[int]string{5: "rename", 12: "copytruncate", 20: "rename", 26: "copytruncate"})

	// Phase 2 kills vigil with SIGKILL while HTTP clients and the file
	// writer are in full flow, restarts it, and rotates once more.
	runPhase(perClient/2, perClient, second, map[int]string{35: "kill", 40: "rename", 50: "copytruncate"})

	wantFile := w.written()
	wantHTTP := clients * perClient
	eventually(t, 120*time.Second, "all lines queryable", func() (bool, string) {
		f := fileCount()
		h := p.countLines(`{service=~"web-.*"}`, 200000)
		return f >= wantFile && h >= wantHTTP, fmt.Sprintf("file %d/%d http %d/%d", f, wantFile, h, wantHTTP)
	})

	// Every line exactly once, with its labels.
	seen := map[string]int{}
	for _, s := range p.streams(`{service="app"}`, 200000) {
		if s.Stream["source"] != "file" || s.Stream["host"] == "" {
			t.Errorf("file stream labels: got %v; want source=file and a host", s.Stream)
		}
		for _, v := range s.Values {
			i := strings.Index(v[1], "seq=file-")
			if i < 0 {
				t.Fatalf("unexpected line %q", v[1])
			}
			seq := v[1][i+4 : i+16]
			seen[seq]++
			if lvl := s.Stream["level"]; !strings.Contains(v[1], "level="+lvl+" ") {
				t.Errorf("line %q in stream with level=%q", v[1], lvl)
			}
		}
	}
	for _, s := range p.streams(`{service=~"web-.*"}`, 200000) {
		c := strings.TrimPrefix(s.Stream["service"], "web-")
		if s.Stream["source"] != "http" || s.Stream["host"] != "h"+c || s.Stream["level"] != "info" {
			t.Errorf("http stream labels: got %v", s.Stream)
		}
		for _, v := range s.Values {
			i := strings.Index(v[1], "seq=http-")
			seen[v[1][i+4:]]++
		}
	}
	missing, dups := 0, 0
	for i := 1; i <= wantFile; i++ {
		switch n := seen[fmt.Sprintf("file-%07d", i)]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	for c := 0; c < clients; c++ {
		for i := 0; i < perClient; i++ {
			switch n := seen[fmt.Sprintf("http-%d-%07d", c, i)]; {
			case n == 0:
				missing++
			case n > 1:
				dups++
			}
		}
	}
	if len(seen) != wantFile+wantHTTP || missing != 0 || dups != 0 {
		t.Errorf("got %d distinct lines, %d missing, %d duplicated; want %d lines exactly once", len(seen), missing, dups, wantFile+wantHTTP)
	}
	t.Logf("%d file lines (4 rotations before, 2 after a kill -9) and %d HTTP lines, each exactly once", wantFile, wantHTTP)

	// Reconciliation agrees: what the collector counted as produced is stored.
	out, err := exec.Command(vigilBinary(t), "reconcile", "--data-dir", p.dataDir(), "--reconcile.query-url", "http://"+p.query,
		"--since", "1h", "--until", "0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("produced %d, stored %d of them, 0 missing", wantFile+wantHTTP, wantFile+wantHTTP)) {
		t.Errorf("vigil reconcile: %v\n%s", err, out)
	}
}
