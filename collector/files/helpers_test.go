package files

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/xxh3"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testHost = "host-1"

// testOptions are fast-polling options for tests.
func testOptions(t testing.TB, patterns ...string) Options {
	o := DefaultOptions()
	o.Patterns = patterns
	o.StateDir = t.TempDir()
	o.Host = testHost
	o.PollInterval = 10 * time.Millisecond
	o.BatchMaxWait = 5 * time.Millisecond
	o.MultilineFlush = 50 * time.Millisecond
	if tt, ok := t.(*testing.T); ok {
		o.Logger = slog.New(slog.NewTextHandler(tt.Output(), nil))
	}
	return o
}

// collector is a Sink that keeps copies of everything it accepted.
type collector struct {
	mu   sync.Mutex
	recs []model.LogRecord
	// fail, when set, is asked before each batch is accepted.
	fail func(recs []model.LogRecord) error
}

func (c *collector) sink(_ context.Context, recs []model.LogRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		if err := c.fail(recs); err != nil {
			return err
		}
	}
	c.recs = append(c.recs, recs...)
	return nil
}

func (c *collector) snapshot() []model.LogRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]model.LogRecord(nil), c.recs...)
}

// waitFor waits until cond holds for what was collected, or fails the
// test. It is for what the Tailer does on its own time (the PollInterval
// timer, multiline flushes); what a poll must deliver is checked right
// after tailer.poll.
func (c *collector) waitFor(t *testing.T, what string, cond func([]model.LogRecord) bool) []model.LogRecord {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs := c.snapshot()
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; got %d records", what, len(recs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tailer is a Tailer run by a test that drives its polling: after the
// first poll, at start, it polls only when poll is called.
type tailer struct {
	*Tailer
	t     *testing.T
	polls chan pollRequest
	exit  chan struct{} // closed when Run returned
	stop  func()
}

// start runs a Tailer until its stop is called (or the test ends).
func start(t *testing.T, opts Options, sink Sink) *tailer {
	t.Helper()
	tl, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	return runTailer(t, tl)
}

// runTailer runs tl until the returned tailer's stop is called (or the
// test ends).
func runTailer(t *testing.T, tl *Tailer) *tailer {
	t.Helper()
	d := &tailer{Tailer: tl, t: t, polls: make(chan pollRequest), exit: make(chan struct{})}
	tl.polls = d.polls
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	go func() {
		err = tl.Run(ctx)
		close(d.exit)
	}()
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			<-d.exit
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(d.stop)
	return d
}

// poll makes the tailer poll once, as its timer would: rescan the
// patterns, notice rotations, truncations and deletions, read every file
// to its end and hand what it read to the Sink. It returns when that is
// done, so what the files held when poll was called has been delivered.
func (d *tailer) poll() { d.pollAt(time.Time{}) }

// pollAt is poll with the poll taking now as the current time (zero:
// time.Now()), to pass time-based limits such as the drain grace period.
func (d *tailer) pollAt(now time.Time) {
	d.t.Helper()
	d.wait(d.request(now))
}

// request starts a poll and returns without waiting for it: what the test
// does next happens while the tailer polls and reads. wait waits for it.
func (d *tailer) request(now time.Time) <-chan struct{} {
	d.t.Helper()
	done := make(chan struct{})
	select {
	case d.polls <- pollRequest{now: now, done: done}:
	case <-d.exit:
		d.t.Fatal("poll: the tailer has stopped")
	case <-time.After(60 * time.Second):
		d.t.Fatal("poll: the tailer did not take the request within 60s")
	}
	return done
}

func (d *tailer) wait(done <-chan struct{}) {
	d.t.Helper()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		d.t.Fatal("poll: not done within 60s")
	}
}

// pollUntil polls until cond holds for what c collected, failing the test
// after 20 polls. One poll delivers what is written before it; more are
// needed only while a writer runs or a rotation is noticed in steps.
func (d *tailer) pollUntil(c *collector, what string, cond func([]model.LogRecord) bool) []model.LogRecord {
	d.t.Helper()
	for range 20 {
		d.poll()
		if recs := c.snapshot(); cond(recs) {
			return recs
		}
	}
	recs := c.snapshot()
	d.t.Fatalf("%s not delivered after 20 polls; got %d records", what, len(recs))
	return recs
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// wantID computes a record id the way docs/format/file-offsets.md says.
func wantID(host, firstLine string, offset int64) model.RecordID {
	fp := xxh3.Hash128([]byte(firstLine)).Bytes()
	b := append([]byte(host), 0)
	b = append(b, fp[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	return xxh3.Hash128(b).Bytes()
}

// seqLine is a test line carrying a sequence number.
func seqLine(seq int) string { return fmt.Sprintf("seq %07d %s", seq, strings.Repeat("x", 40)) }

func seqOf(msg string) (int, bool) {
	if !strings.HasPrefix(msg, "seq ") || len(msg) < 11 {
		return 0, false
	}
	n, err := strconv.Atoi(msg[4:11])
	return n, err == nil
}

// checkOnce asserts that seqs 0..n-1 were each delivered exactly once.
func checkOnce(t *testing.T, recs []model.LogRecord, n int) {
	t.Helper()
	count := make([]int, n)
	for _, r := range recs {
		if s, ok := seqOf(r.Message); ok && s < n {
			count[s]++
		}
	}
	bad := 0
	for s, c := range count {
		if c != 1 {
			if bad < 10 {
				t.Errorf("seq %d delivered %d times, want once", s, c)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d seqs not delivered exactly once", bad, n)
	}
}

func countSeqs(n int) func([]model.LogRecord) bool {
	return func(recs []model.LogRecord) bool {
		seen := map[int]bool{}
		for _, r := range recs {
			if s, ok := seqOf(r.Message); ok && s < n {
				seen[s] = true
			}
		}
		return len(seen) == n
	}
}
