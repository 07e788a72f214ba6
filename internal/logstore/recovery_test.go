package logstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func TestDuplicatesSkipped(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	recs := genRecords(5, 300, day0, 1e6)
	write(t, s, recs[:200])
	// Redelivered: 100 old rows and 100 new ones, some twice in the batch.
	batch := append(slices.Clone(recs[100:300]), recs[250:260]...)
	write(t, s, batch)
	check := func() {
		t.Helper()
		got := selectAll(t, s, all)
		if !slices.Equal(ids(got), ids(sortRecords(recs))) {
			t.Fatalf("got %d rows, want each of %d exactly once", len(got), len(recs))
		}
	}
	check()
	// Zero ids are never deduplicated.
	zero := []model.LogRecord{{Timestamp: day0, Message: "a"}, {Timestamp: day0, Message: "a"}}
	write(t, s, zero)
	if got := len(selectAll(t, s, storage.SelectParams{Start: all.Start, End: all.End, Contains: []string{"a"}})); got < 2 {
		t.Fatalf("got %d rows with zero ids, want both", got)
	}

	// After reopening, the ids come back from the blocks.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	write(t, s, recs)
	got := selectAll(t, s, all)
	if len(got) != len(recs)+2 {
		t.Fatalf("after reopen and redelivery: got %d rows, want %d", len(got), len(recs)+2)
	}
}

// TestDedupWindow documents the window: ids older than two generations may
// be stored twice.
func TestDedupWindow(t *testing.T) {
	set := newIDSet(3)
	for k := uint64(1); k <= 7; k++ {
		if set.seen(k << 1) {
			t.Fatalf("new key %d seen", k)
		}
	}
	// Generations of 3: {1 2 3} forgotten, {4 5 6} previous, {7} current.
	for _, c := range []struct {
		k    uint64
		want bool
	}{{4, true}, {6, true}, {7, true}, {1, false}} {
		if got := set.seen(c.k << 1); got != c.want {
			t.Errorf("seen(%d) = %v, want %v", c.k, got, c.want)
		}
	}
	// Many keys: the table grows and still finds every recent one.
	big := newIDSet(100_000)
	for k := uint64(1); k <= 150_000; k++ {
		big.seen(k * 0x9e3779b97f4a7c15)
	}
	for k := uint64(1); k <= 150_000; k++ {
		if !big.seen(k * 0x9e3779b97f4a7c15) {
			t.Fatalf("key %d of the last two generations not seen", k)
		}
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-n); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverTornFiles cuts the files of a partition or the WAL in the
// middle of their last record, as a crash or a bad disk can, and checks
// that reopening keeps everything before it.
func TestRecoverTornFiles(t *testing.T) {
	a := genRecords(6, 500, day0, 1e6)
	b := []model.LogRecord{{ID: model.RecordID{9}, Timestamp: day0 + 1e9, Service: "b", Message: "last block"}}
	base := t.TempDir()
	s := openStore(t, base)
	write(t, s, a)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, base)
	write(t, s, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dayName(dayOf(day0)))

	f := func(name string, damage func(dir string), want []model.LogRecord) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			damage(dir)
			s := openStore(t, dir)
			got := selectAll(t, s, all)
			if !slices.Equal(ids(got), ids(sortRecords(want))) {
				t.Fatalf("got %d rows, want %d", len(got), len(want))
			}
			// The store keeps working: a redelivery of what was lost is stored.
			write(t, s, b)
			if n := len(selectAll(t, s, all)); n != len(a)+1 {
				t.Fatalf("after rewriting the lost row: %d rows, want %d", n, len(a)+1)
			}
		})
	}
	f("data cut in last block", func(dir string) { truncateBy(t, filepath.Join(dir, part, dataFileName), 10) }, a)
	f("index cut in last record", func(dir string) { truncateBy(t, filepath.Join(dir, part, indexFileName), 3) }, a)
	f("index tail garbage", func(dir string) {
		fh, err := os.OpenFile(filepath.Join(dir, part, indexFileName), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		fh.Write([]byte{200, 0, 0, 0, 1, 2, 3})
		fh.Close()
	}, append(slices.Clone(a), b...))

	// A WAL cut in its last record: the store crashed while writing b2.
	t.Run("wal cut in last record", func(t *testing.T) {
		live := t.TempDir()
		// A head big enough that nothing is flushed while the files are copied.
		s := openStore(t, live, func(o *Options) { o.tune.headBytes = 1 << 30 })
		write(t, s, a)
		b2 := []model.LogRecord{{ID: model.RecordID{10}, Timestamp: day0 + 2e9, Service: "b", Message: "torn"}}
		write(t, s, b2)
		dir := t.TempDir()
		copyDir(t, live, dir) // the state a crash would leave
		seqs, err := listSegments(filepath.Join(dir, walDirName))
		if err != nil || len(seqs) == 0 {
			t.Fatalf("no WAL segment to damage: %v", err)
		}
		truncateBy(t, segmentPath(filepath.Join(dir, walDirName), seqs[len(seqs)-1]), 5)
		os.Remove(filepath.Join(dir, "LOCK"))
		s2 := openStore(t, dir)
		if got := selectAll(t, s2, all); !slices.Equal(ids(got), ids(sortRecords(a))) {
			t.Fatalf("got %d rows, want the %d before the torn write", len(got), len(a))
		}
	})
}

// The crash test runs the test binary as a child that writes batches and
// prints each acknowledged one, kills it with SIGKILL at a random moment,
// and checks that the reopened store holds every acknowledged row exactly
// once. Each round resends the last batches of the previous one, as a
// pipeline redelivers after a crash.

const crashChildEnv = "VIGIL_LOGSTORE_CRASH_CHILD"

const crashBatch = 40

func crashRecords(batch int) []model.LogRecord {
	return genRecords(uint64(batch)+1000, crashBatch, day0+int64(batch)*1e8, 1e6)
}

func crashChild() int {
	dir, first, _ := strings.Cut(os.Getenv(crashChildEnv), ",")
	n, _ := strconv.Atoi(first)
	s, err := Open(Options{Dir: dir, tune: &tuning{headBytes: 128 << 10, dedupGen: 1 << 16, smallRows: 256, mergeBlocks: 4, rewriteDead: 64}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := max(n-5, 0); ; i++ {
		if err := s.Write(context.Background(), crashRecords(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("ack %d\n", i)
	}
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	acked := map[int]bool{}
	next := 0
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", crashChildEnv, dir, next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		killAfter := 50 + round*70
		for n := 0; sc.Scan(); {
			var i int
			if _, err := fmt.Sscanf(sc.Text(), "ack %d", &i); err == nil {
				acked[i] = true
				next = max(next, i+1)
			}
			if n++; n == killAfter {
				cmd.Process.Kill() // SIGKILL
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		if strings.TrimSpace(stderr.String()) != "" {
			t.Fatalf("child failed: %s", stderr.String())
		}
	}

	s := openStore(t, dir)
	seen := map[model.RecordID]int{}
	err := s.Select(context.Background(), all, func(r *storage.Row) bool {
		seen[r.ID]++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %s stored %d times", id, n)
		}
	}
	for i := range acked {
		for _, r := range crashRecords(i) {
			if seen[r.ID] != 1 {
				t.Fatalf("acknowledged batch %d: row %s missing", i, r.ID)
			}
		}
	}
	t.Logf("%d batches acknowledged over 4 kills; %d rows stored", len(acked), len(seen))
}
