package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

const (
	crashDirEnv   = "VIGIL_SPOOL_CRASH_DIR"
	crashRoundEnv = "VIGIL_SPOOL_CRASH_ROUND"
	// crashPublishers publish concurrently in the child.
	crashPublishers = 4
	// crashForwarded is how many batches the child's downstream
	// acknowledges before it goes down for good.
	crashForwarded = 40
)

// crashOptions bound the spool to a few hundred batches, over several
// segments, so that the child fills it.
func crashOptions(dir string) testConfig {
	return testOptions(dir, func(o *testConfig) {
		o.MaxBytes = 256 << 10
		o.SegmentBytes = 32 << 10
	})
}

// crashGrade is the grade of publisher i's batches: each publisher has a
// lane of its own.
func crashGrade(i int) int { return i%4 + 1 }

// crashKeyGrade is the grade of a key of publisher i, "r<round>-p<i>".
func crashKeyGrade(key string) int {
	_, p, _ := strings.Cut(key, "-p")
	i, _ := strconv.Atoi(p)
	return crashGrade(i)
}

func crashValue(key string, seq int) []byte {
	v := fmt.Appendf(nil, "%s/%d/", key, seq)
	return append(v, strings.Repeat(string(rune('a'+seq%26)), 100+seq*37%1500)...)
}

// lineWriter writes whole lines to stdout, one write each, so a kill
// leaves no partial line in the pipe.
type lineWriter struct{ mu sync.Mutex }

func (w *lineWriter) printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// TestCrashChild is the process TestCrash kills. Its downstream
// acknowledges crashForwarded batches ("F key seq"), then fails every
// call, so the spool fills. Publishers print "A key seq" for every batch
// the spool accepted and "full" the first time it refuses one.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	var out lineWriter
	var forwarded int
	down := &fakeDownstream{}
	down.fail = func(b batch, _ int) error {
		if forwarded >= crashForwarded { // Run calls Publish from one goroutine
			return errDown
		}
		forwarded++
		return nil
	}
	down.acked = func(b batch) {
		key, seq, _ := strings.Cut(b.value, "/")
		seq, _, _ = strings.Cut(seq, "/")
		out.printf("F %s %s", key, seq)
	}
	s, err := openSpool(crashOptions(dir), down)
	if err != nil {
		t.Fatal(err)
	}
	go s.Run(context.Background()) //nolint:errcheck // killed
	var fullOnce sync.Once
	var wg sync.WaitGroup
	for i := range crashPublishers {
		key := fmt.Sprintf("r%s-p%d", os.Getenv(crashRoundEnv), i)
		ctx := queue.WithGrade(context.Background(), crashGrade(i))
		wg.Go(func() {
			for seq := 0; ; {
				err := s.Publish(ctx, key, crashValue(key, seq))
				if errors.Is(err, queue.ErrFull) {
					fullOnce.Do(func() { out.printf("full") })
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				out.printf("A %s %d", key, seq)
				seq++
			}
		})
	}
	wg.Wait()
}

// TestCrash kills (SIGKILL) a process that publishes into a spool whose
// downstream went down, reopens the spool with a working downstream, and
// checks that every batch the child acknowledged is forwarded, each key's
// in order, and that the only duplicates are batches the child's
// downstream had acknowledged but the child had not yet committed (at most
// one commit group). Four rounds: killed while forwarding, while filling,
// right after the spool got full, and while full.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	for round, killAfter := range []string{"F 20", "A 60", "full", "full+200ms"} {
		acked, childForwarded := runCrashChild(t, dir, round, killAfter)

		down := &fakeDownstream{}
		s := mustOpen(t, crashOptions(dir), down)
		backlog, _ := s.backlog.snapshot()
		stop := startRun(t, s)
		waitFor(t, "the backlog forwarded", func() bool { b, _ := s.backlog.snapshot(); return b <= 0 })
		stop()
		mustClose(t, s)
		if got := len(down.forwarded()); int64(got) != backlog {
			t.Errorf("round %d: forwarded %d batches; the reopened spool counted %d", round, got, backlog)
		}

		// The parent forwards again only what the child's downstream
		// acknowledged last, before the child committed it: in each lane
		// (a key here), the first forwards of the parent are the last of
		// the child, at most one commit group of them. The backlog goes
		// grade 1 first.
		var parent []crashForward
		for _, b := range down.forwarded() {
			key, rest, _ := strings.Cut(b.value, "/")
			seqText, _, _ := strings.Cut(rest, "/")
			seq, _ := strconv.Atoi(seqText)
			if b.key != key || string(crashValue(key, seq)) != b.value {
				t.Fatalf("round %d: forwarded batch %.40q under key %q does not match its key and sequence", round, b.value, b.key)
			}
			parent = append(parent, crashForward{key, seq})
		}
		for i := 1; i < len(parent); i++ {
			if g, prev := crashKeyGrade(parent[i].key), crashKeyGrade(parent[i-1].key); g < prev {
				t.Fatalf("round %d: after the restart a batch of grade %d (%v) was forwarded after one of grade %d; want the backlog by grade",
					round, g, parent[i], prev)
			}
		}
		byKey := func(fs []crashForward) map[string][]crashForward {
			m := map[string][]crashForward{}
			for _, f := range fs {
				m[f.key] = append(m[f.key], f)
			}
			return m
		}
		childByKey, parentByKey := byKey(childForwarded), byKey(parent)
		dups := 0
		seqs := map[string][]int{}
		for key, pf := range parentByKey {
			cf := childByKey[key]
			inChild := map[crashForward]bool{}
			for _, f := range cf {
				inChild[f] = true
			}
			n := 0
			for n < len(pf) && inChild[pf[n]] {
				n++
			}
			if !slices.Equal(pf[:n], cf[len(cf)-n:]) || n > commitBatches {
				t.Errorf("round %d: key %s: the first %d batches forwarded after the restart were forwarded by the child too; want at most %d, the last ones it forwarded",
					round, key, n, commitBatches)
			}
			dups += n
			for _, f := range pf[n:] {
				seqs[key] = append(seqs[key], f.seq)
			}
		}
		for key, cf := range childByKey {
			var child []int
			for _, f := range cf {
				child = append(child, f.seq)
			}
			seqs[key] = append(child, seqs[key]...)
		}
		for key, last := range acked {
			next := 0
			for _, seq := range seqs[key] {
				if seq != next {
					t.Fatalf("round %d: key %s: forwarded %d after %d; want each acknowledged batch once, in order", round, key, seq, next-1)
				}
				next++
			}
			// Everything acknowledged; at most the Publish in flight at the
			// kill besides.
			if next <= last || next > last+2 {
				t.Errorf("round %d: key %s: forwarded 0..%d; acknowledged 0..%d", round, key, next-1, last)
			}
			delete(seqs, key)
		}
		for key := range seqs {
			if !strings.HasPrefix(key, fmt.Sprintf("r%d-", round)) {
				t.Errorf("round %d: forwarded batches of key %s of another round", round, key)
			}
		}
		t.Logf("round %d (kill after %q): %d acknowledged, %d forwarded by the child, %d after the restart, %d duplicates",
			round, killAfter, sumAcked(acked), len(childForwarded), backlog, dups)
	}
}

type crashForward struct {
	key string
	seq int
}

// runCrashChild runs TestCrashChild on dir until its output shows
// killAfter ("A n": n acknowledged batches; "F n": n forwarded batches;
// "full": the first refusal;
// "full+D": D after it), kills it, and returns the last acknowledged
// sequence number of each key and the child's forwards.
func runCrashChild(t *testing.T, dir string, round int, killAfter string) (map[string]int, []crashForward) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s=%d", crashRoundEnv, round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("kill: %v", err)
			}
		}
	}
	var delay time.Duration
	if d, ok := strings.CutPrefix(killAfter, "full+"); ok {
		delay, _ = time.ParseDuration(d)
		killAfter = "full"
	}
	wantAcks, wantForwards := -1, -1
	if n, ok := strings.CutPrefix(killAfter, "A "); ok {
		wantAcks, _ = strconv.Atoi(n)
	}
	if n, ok := strings.CutPrefix(killAfter, "F "); ok {
		wantForwards, _ = strconv.Atoi(n)
	}
	acked := map[string]int{}
	var forwarded []crashForward
	nAcked := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		switch {
		case len(fields) == 3 && (fields[0] == "A" || fields[0] == "F"):
			seq, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatalf("child printed %q", line)
			}
			if fields[0] == "F" {
				forwarded = append(forwarded, crashForward{fields[1], seq})
				if len(forwarded) == wantForwards {
					kill()
				}
				continue
			}
			if last, ok := acked[fields[1]]; ok && seq != last+1 || !ok && seq != 0 {
				t.Fatalf("child acknowledged %q after %d", line, last)
			}
			acked[fields[1]] = seq
			if nAcked++; nAcked == wantAcks {
				kill()
			}
		case line == "full":
			if killAfter == "full" {
				if delay > 0 {
					time.AfterFunc(delay, kill)
				} else {
					kill()
				}
			}
		default:
			t.Logf("child: %s", line)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("reading the child's output: %v", err)
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited on its own (%v) before %q", err, killAfter)
	}
	return acked, forwarded
}

func sumAcked(acked map[string]int) int {
	n := 0
	for _, last := range acked {
		n += last + 1
	}
	return n
}
