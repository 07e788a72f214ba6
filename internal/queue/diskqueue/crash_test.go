package diskqueue

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/queue"
)

const (
	crashDirEnv   = "VIGIL_DISKQUEUE_CRASH_DIR"
	crashRoundEnv = "VIGIL_DISKQUEUE_CRASH_ROUND"
	// crashPublishers publish concurrently in the child, so the kill can
	// land inside a group commit, a segment roll or a write.
	crashPublishers = 4
	crashSegment    = 32 << 10
)

// crashValue is the value of message seq of key: it names both, so that a
// record cannot be mistaken for another, and has a size that varies.
func crashValue(key string, seq int) []byte {
	v := fmt.Appendf(nil, "%s/%d/", key, seq)
	return append(v, bytes.Repeat([]byte{byte('a' + seq%26)}, 100+seq*37%2000)...)
}

// TestCrashChild is the process TestCrash kills. It publishes from
// crashPublishers goroutines until it is killed, printing "key seq" for
// every acknowledged message.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	p, err := OpenProducer(testOptions(dir, func(o *Options) { o.SegmentBytes = crashSegment }))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range crashPublishers {
		key := fmt.Sprintf("r%s-p%d", os.Getenv(crashRoundEnv), i)
		wg.Go(func() {
			for seq := 0; ; seq++ {
				if err := p.Publish(context.Background(), key, crashValue(key, seq)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%s %d\n", key, seq) // one write per line
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrash kills a publishing process with SIGKILL at an arbitrary moment,
// three times over, and checks after each kill that every acknowledged
// message is delivered exactly once and in order, starting exactly after
// the last commit.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	var pending []string // fetched after the last kill but not committed
	for round := range 3 {
		acked := runCrashChild(t, dir, round, 1000)

		q := mustOpen(t, dir, func(o *Options) { o.SegmentBytes = crashSegment })
		msgs := fetchAll(t, q)
		got := crashIDs(t, msgs)
		if !slices.Equal(got[:min(len(pending), len(got))], pending) {
			t.Fatalf("round %d: redelivery starts with %.5v; want the %d uncommitted messages %.5v…", round, got, len(pending), pending)
		}
		next := make(map[string]int)
		for _, id := range got[len(pending):] {
			key, seqText, _ := strings.Cut(id, " ")
			seq, _ := strconv.Atoi(seqText)
			if !strings.HasPrefix(key, fmt.Sprintf("r%d-", round)) || seq != next[key] {
				t.Fatalf("round %d: got message %q after %d of its key; want each key's messages once, in order", round, id, next[key])
			}
			next[key]++
		}
		for key, last := range acked {
			// Everything acknowledged is there; at most the one message
			// in flight when the kill came is there besides.
			if n := next[key]; n <= last || n > last+2 {
				t.Fatalf("round %d: key %s: %d messages delivered; acknowledged 0..%d", round, key, n, last)
			}
		}
		// Commit half, so that the next round must redeliver the rest.
		half := len(msgs) / 2
		mustCommit(t, q, msgs[half])
		pending = got[half+1:]
		mustClose(t, q)
	}
}

// runCrashChild runs TestCrashChild on dir and kills it once it has
// acknowledged n messages. It returns the last acknowledged sequence number
// of each key.
func runCrashChild(t *testing.T, dir string, round, n int) map[string]int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make(map[string]int)
	count := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		key, seqText, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.Atoi(seqText)
		if !ok || err != nil {
			continue // a line cut by the kill, or test output
		}
		if prev, seen := acked[key]; seen && seq != prev+1 || !seen && seq != 0 {
			t.Errorf("child acknowledged %s %d after %d", key, seq, prev)
		}
		acked[key] = seq
		if count++; count == n {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if count < n {
		t.Fatalf("child exited after %d acknowledgements (%v); stderr:\n%s", count, err, stderr.String())
	}
	return acked
}

func crashIDs(t *testing.T, msgs []queue.Message) []string {
	t.Helper()
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		keyText, rest, _ := strings.Cut(string(m.Value), "/")
		seqText, _, _ := strings.Cut(rest, "/")
		seq, err := strconv.Atoi(seqText)
		if err != nil || keyText != m.Key || !bytes.Equal(m.Value, crashValue(m.Key, seq)) {
			t.Fatalf("message at position %d with key %q has a damaged value %.40q", m.Position, m.Key, m.Value)
		}
		ids = append(ids, fmt.Sprintf("%s %d", m.Key, seq))
	}
	return ids
}
