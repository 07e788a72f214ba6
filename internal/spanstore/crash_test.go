package spanstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// The crash test runs the test binary as a child that writes batches and
// reports each acknowledged batch on stdout, kills it with SIGKILL at a
// random moment, and checks that every acknowledged span survived, that the
// store reopens, and that the redelivered batches are stored once, also
// when their first copy is in a sealed index segment.

const (
	crashChildEnv = "VIGIL_SPANSTORE_CRASH_CHILD"
	crashSeal     = 100 // spans: a segment every 5 batches
)

func crashBatch(i int) []model.Span {
	out := make([]model.Span, 20)
	for j := range out {
		sp := fullSpan()
		sp.TraceID = tid(uint64(i))
		sp.SpanID = sid(uint64(j + 1))
		sp.StartTime = day0 + int64(i)*1e9 + int64(j)
		out[j] = sp
	}
	return out
}

func crashChild() int {
	dir, first, _ := strings.Cut(os.Getenv(crashChildEnv), ",")
	n, _ := strconv.Atoi(first)
	// Seal often, so that kills also land while an index segment is
	// written.
	s, err := Open(Options{Dir: dir, sealSpans: crashSeal})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := n; ; i++ {
		if err := s.Write(context.Background(), crashBatch(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(i)
	}
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	acked := -1
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", crashChildEnv, dir, max(acked-2, 0))) // redeliver a few
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(time.Duration(100+50*round)*time.Millisecond, func() { cmd.Process.Kill() })
		var buf strings.Builder
		b := make([]byte, 4096)
		for {
			n, err := out.Read(b)
			buf.WriteString(string(b[:n]))
			if err != nil {
				break
			}
		}
		cmd.Wait()
		lines := strings.Fields(buf.String())
		for _, l := range lines {
			if i, err := strconv.Atoi(l); err == nil && i > acked {
				acked = i
			}
		}
	}
	if acked < 0 {
		t.Fatal("the child acknowledged no batch")
	}
	s := openStore(t, dir, withSeal(crashSeal))
	if len(segFiles(t, dir)) == 0 {
		t.Fatal("no index segment was written")
	}
	for i := 0; i <= acked; i++ {
		got, err := s.GetTrace(context.Background(), tid(uint64(i)))
		if err != nil || len(got) != 20 {
			t.Fatalf("batch %d of %d acknowledged: got %d spans, %v; want 20", i, acked, len(got), err)
		}
	}
}
