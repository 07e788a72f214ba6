package files

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
)

func TestAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.log")
	opts := testOptions(t, filepath.Join(dir, "*.log"))
	var c collector
	tl := start(t, opts, c.sink)

	const n = 3000
	var content strings.Builder
	for i := range n {
		content.WriteString(seqLine(i) + "\n")
	}
	s := content.String()
	// Appends of uneven sizes, most ending mid-line, each read before the
	// next: every complete line is delivered, the partial one waits.
	for i := 0; i < len(s); {
		j := min(len(s), i+1+(i*7919)%20000)
		appendFile(t, path, s[i:j])
		i = j
		tl.poll()
		if got, want := len(c.snapshot()), strings.Count(s[:j], "\n"); got != want {
			t.Fatalf("after %d bytes: got %d records; want the %d complete lines", j, got, want)
		}
	}
	recs := c.snapshot()
	checkOnce(t, recs, n)

	firstLine := seqLine(0) + "\n"
	var offset int64
	for i, r := range recs {
		if want := seqLine(i); r.Message != want {
			t.Fatalf("record %d: got message %q, want %q (out of order?)", i, r.Message, want)
		}
		if want := wantID(testHost, firstLine, offset); r.ID != want {
			t.Fatalf("record %d: got id %s, want %s", i, r.ID, want)
		}
		offset += int64(len(r.Message) + 1)
		if p, _ := r.Attr(attrFilePath); p != path {
			t.Errorf("record %d: got log.file.path %q, want %q", i, p, path)
		}
		if r.Service != "api" || r.Host != testHost || r.Source != "file" || r.Truncated {
			t.Errorf("record %d: got service %q host %q source %q truncated %v, want api %s file false",
				i, r.Service, r.Host, r.Source, r.Truncated, testHost)
		}
		if r.Timestamp == 0 || r.Timestamp != r.ObservedTimestamp {
			t.Errorf("record %d: got timestamps %d/%d, want equal read time", i, r.Timestamp, r.ObservedTimestamp)
		}
	}
}

// TestPollInterval runs the Tailer on its own timer, as in production
// (the other tests drive its polls): a line appended to a file it has read
// to its end is delivered at a later poll, without anyone asking.
func TestPollInterval(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, seqLine(0)+"\n")
	var c collector
	tl, err := New(testOptions(t, path), c.sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	c.waitFor(t, "the first line", countSeqs(1))
	for i := 1; i <= 3; i++ {
		appendFile(t, path, seqLine(i)+"\n")
		c.waitFor(t, fmt.Sprintf("line %d", i), countSeqs(i+1))
	}
	checkOnce(t, c.snapshot(), 4)
}

// TestLines covers line assembly: CRLF, empty lines, lines split across
// writes, maximum length, multiline joining and its flush timeout, and an
// unterminated last line.
func TestLines(t *testing.T) {
	type rec struct {
		msg       string
		offset    int64
		truncated bool
	}
	f := func(name string, setup func(*Options), writes []string, want []rec) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			opts := testOptions(t, path)
			if setup != nil {
				setup(&opts)
			}
			var c collector
			tl := start(t, opts, c.sink)
			for _, w := range writes {
				appendFile(t, path, w)
				tl.poll() // the tailer reads each part alone
			}
			// A pending multiline record is shipped after MultilineFlush
			// without a line, on the Tailer's own timer.
			c.waitFor(t, "records", func(r []model.LogRecord) bool { return len(r) >= len(want) })
			tl.poll() // anything extra would show up now
			tl.stop()
			got := c.snapshot()
			all := strings.Join(writes, "")
			firstLine := all[:strings.IndexByte(all, '\n')+1]
			if len(firstLine) > 1024 {
				firstLine = all[:1024]
			}
			if len(got) != len(want) {
				for _, r := range got {
					t.Logf("got %.60q", r.Message)
				}
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			for i, w := range want {
				g := got[i]
				if g.Message != w.msg || g.Truncated != w.truncated {
					t.Errorf("record %d: got %.80q truncated=%v, want %.80q truncated=%v", i, g.Message, g.Truncated, w.msg, w.truncated)
				}
				if id := wantID(testHost, firstLine, w.offset); g.ID != id {
					t.Errorf("record %d: got id %s, want the id of offset %d", i, g.ID, w.offset)
				}
			}
		})
	}
	f("crlf", nil, []string{"one\r\ntwo\r\n"}, []rec{{"one", 0, false}, {"two", 5, false}})
	f("empty lines skipped", nil, []string{"a\n\n\nb\n"}, []rec{{"a", 0, false}, {"b", 4, false}})
	f("split across writes", nil, []string{"first\nhel", "lo wor", "ld\n"},
		[]rec{{"first", 0, false}, {"hello world", 6, false}})
	f("unterminated last line waits", nil, []string{"a\nb"}, []rec{{"a", 0, false}})
	f("unterminated last line completed", nil, []string{"a\nb", "c\n"}, []rec{{"a", 0, false}, {"bc", 2, false}})

	max := func(n int) func(*Options) { return func(o *Options) { o.MaxLineBytes = n } }
	f("truncated in buffer", max(10), []string{"short\n0123456789abcdef\nnext\n"},
		[]rec{{"short", 0, false}, {"0123456789", 6, true}, {"next", 23, false}})
	long := strings.Repeat("L", 200<<10)
	f("truncated across reads", max(100), []string{"start\n" + long, long, "\nafter\n"},
		[]rec{{"start", 0, false}, {long[:100], 6, true}, {"after", 6 + 2*int64(len(long)) + 1, false}})

	java := "2024-01-31 12:00:00 ERROR request failed\n" +
		"java.lang.IllegalStateException: boom\n" +
		"\tat com.example.Api.handle(Api.java:42)\n" +
		"\tat com.example.Server.run(Server.java:7)\n"
	next := "2024-01-31 12:00:01 INFO recovered\n"
	ml := func(o *Options) { o.MultilineStart = `^\d{4}-\d{2}-\d{2} ` }
	f("multiline java stack trace", ml, []string{java, next},
		[]rec{{strings.TrimSuffix(java, "\n"), 0, false}, {"2024-01-31 12:00:01 INFO recovered", int64(len(java)), false}})
	f("multiline continuation across writes", func(o *Options) { ml(o); o.MultilineFlush = time.Second }, []string{java[:60], java[60:]},
		[]rec{{strings.TrimSuffix(java, "\n"), 0, false}})
	f("multiline record cut at max length", func(o *Options) { ml(o); o.MaxLineBytes = 50 }, []string{java + next},
		[]rec{{java[:50], 0, true}, {"2024-01-31 12:00:01 INFO recovered", int64(len(java)), false}})
}

func TestSinkErrorsRetrySameBatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	opts := testOptions(t, path)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.BatchMaxLines = 100

	var c collector
	var attempts [][]model.RecordID
	failures := 0
	c.fail = func(recs []model.LogRecord) error {
		ids := make([]model.RecordID, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		attempts = append(attempts, ids)
		if len(attempts) >= 2 && failures < 3 {
			failures++
			return errors.New("queue unavailable")
		}
		return nil
	}
	tl := start(t, opts, c.sink)
	const n = 1000
	var b strings.Builder
	for i := range n {
		b.WriteString(seqLine(i) + "\n")
	}
	appendFile(t, path, b.String())
	tl.poll() // returns once the failed batch was accepted
	recs := c.snapshot()
	checkOnce(t, recs, n)
	for i, r := range recs {
		if s, _ := seqOf(r.Message); s != i {
			t.Fatalf("record %d: got seq %d, want %d (order)", i, s, i)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if failures != 3 {
		t.Fatalf("got %d failures, want 3", failures)
	}
	for i := 1; i <= 3; i++ { // attempts 1..3 failed; each retry is the same batch
		if !slices.Equal(attempts[i], attempts[i+1]) {
			t.Errorf("attempt %d after a failure: got a different batch (%d records, was %d)", i+1, len(attempts[i+1]), len(attempts[i]))
		}
	}
	if got := counterValue(t, reg, "vigil_collector_files_sink_errors_total"); got != 3 {
		t.Errorf("got sink_errors_total %v, want 3", got)
	}
}

// counterValue returns the sum of a counter family's values in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue()
		}
		return v
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestNewRejectsBadOptions(t *testing.T) {
	f := func(name string, o Options, want string) {
		t.Helper()
		_, err := New(o, func(context.Context, []model.LogRecord) error { return nil })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v, want one containing %q", name, err, want)
		}
	}
	dir := t.TempDir()
	f("no patterns", Options{StateDir: dir}, "no file patterns")
	f("bad pattern", Options{Patterns: []string{"[x"}, StateDir: dir}, "syntax error")
	f("no state dir", Options{Patterns: []string{"*.log"}}, "no state directory")
	f("bad multiline", Options{Patterns: []string{"*.log"}, StateDir: dir, MultilineStart: "("}, "multiline start pattern")
}
