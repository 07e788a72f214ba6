package dumpstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/dumptest"
)

const crashChildEnv = "VIGIL_DUMPSTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

var t0 = dumptest.T0

func clock(at *time.Time) func() time.Time { return func() time.Time { return *at } }

// TestRunRetention: an idle store deletes the journals past the retention.
func TestRunRetention(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	now := t0
	o := DefaultOptions(dir)
	o.RetentionDays, o.RetentionInterval = 1, 5*time.Millisecond
	o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dumptest.Write(t, s, dumptest.Event("a1", "7", t0))
	mu.Lock()
	now = t0.Add(48 * time.Hour)
	mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	path := filepath.Join(dir, "2026-03-02.dumps")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			break
		}
	}
	cancel()
	<-done
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("journal of day 0 after two days with a one-day retention: %v; want deleted", err)
	}
}

func TestShared(t *testing.T) {
	dumptest.Run(t, func(t *testing.T) dumptest.Store {
		now := t0
		return openAt(t, t.TempDir(), &now, 30)
	})
}

func openAt(t testing.TB, dir string, now *time.Time, retention int) *Store {
	t.Helper()
	o := DefaultOptions(dir)
	o.Now, o.RetentionDays = clock(now), retention
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRestartAndTornTail(t *testing.T) {
	dir := t.TempDir()
	now := t0
	s := openAt(t, dir, &now, 30)
	dumptest.Write(t, s, dumptest.Event("a1", "7", t0), dumptest.Event("a2", "7", t0))
	if _, err := s.SetIssueStatus(context.Background(), "7", model.IssueResolved, t0.Add(time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A write that was cut short: its record is torn.
	path := filepath.Join(dir, "2026-03-02.dumps")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 'E', 9})
	f.Close()
	s = openAt(t, dir, &now, 30)
	is := dumptest.Issue(t, s, "7")
	if is.Count != 2 || is.Status != model.IssueResolved {
		t.Errorf("after restart: count %d, status %s; want 2, resolved", is.Count, is.Status)
	}
	if ch := dumptest.Write(t, s, dumptest.Event("a2", "7", t0), dumptest.Event("a3", "7", t0.Add(2*time.Hour))); dumptest.Kinds(ch) != "regression:7:a3" {
		t.Errorf("after restart: changes %q; want the duplicate skipped and a regression", dumptest.Kinds(ch))
	}
	s.Close()
	s = openAt(t, dir, &now, 30)
	if is := dumptest.Issue(t, s, "7"); is.Count != 3 || is.Status != model.IssueUnresolved {
		t.Errorf("after a second restart: count %d, status %s; want 3, unresolved", is.Count, is.Status)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := t0
	s := openAt(t, dir, &now, 2)
	dumptest.Write(t, s, dumptest.Event("old", "1", t0), dumptest.Event("a1", "7", t0))
	now = t0.Add(24 * time.Hour)
	dumptest.Write(t, s, dumptest.Event("a2", "7", now))
	now = t0.Add(48 * time.Hour) // day 0 is now past a 2-day retention
	dumptest.Write(t, s, dumptest.Event("b1", "8", now))
	if _, err := os.Stat(filepath.Join(dir, "2026-03-02.dumps")); !os.IsNotExist(err) {
		t.Errorf("the journal of day 0 is still there (%v); want it deleted", err)
	}
	if _, err := s.GetIssue(context.Background(), "1"); !errors.Is(err, storage.ErrIssueNotFound) {
		t.Errorf("issue 1, last seen on day 0: %v; want deleted", err)
	}
	if _, err := s.GetEvent(context.Background(), "a1"); !errors.Is(err, storage.ErrEventNotFound) {
		t.Errorf("event a1 of day 0: %v; want deleted", err)
	}
	s.Close()
	s = openAt(t, dir, &now, 2)
	// Issue 7's latest state was written on day 1; its count includes the
	// event of day 0.
	if is := dumptest.Issue(t, s, "7"); is.Count != 2 {
		t.Errorf("issue 7 after retention and restart: count %d; want 2", is.Count)
	}
}

// TestSetRetention shortens the retention of an open store: the
// journals now past it go at once, and an issue seen since keeps its count.
func TestSetRetention(t *testing.T) {
	dir := t.TempDir()
	now := t0
	s := openAt(t, dir, &now, 30)
	dumptest.Write(t, s, dumptest.Event("old", "1", t0), dumptest.Event("a1", "7", t0))
	now = t0.Add(24 * time.Hour)
	dumptest.Write(t, s, dumptest.Event("a2", "7", now))
	now = t0.Add(48 * time.Hour)
	if err := s.SetRetention(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-03-02.dumps")); !os.IsNotExist(err) {
		t.Errorf("the journal of day 0 is still there (%v); want it deleted", err)
	}
	if _, err := s.GetIssue(context.Background(), "1"); !errors.Is(err, storage.ErrIssueNotFound) {
		t.Errorf("issue 1, last seen on day 0: %v; want deleted", err)
	}
	if is := dumptest.Issue(t, s, "7"); is.Count != 2 {
		t.Errorf("issue 7 after the shorter retention: count %d; want 2", is.Count)
	}
	s.Close()
	if err := s.SetRetention(24 * time.Hour); !errors.Is(err, ErrClosed) {
		t.Errorf("SetRetention on a closed store: %v; want ErrClosed", err)
	}
}

// The crash test runs the test binary as a child that writes batches and
// prints each acknowledged one, kills it with SIGKILL at a random moment,
// and checks that every acknowledged event survived and counts once, also
// when the child redelivers the last batches after a restart.

func crashChild() int {
	dir, first, _ := strings.Cut(os.Getenv(crashChildEnv), ",")
	n, _ := strconv.Atoi(first)
	s, err := Open(DefaultOptions(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := n; ; i++ {
		var batch []storage.GroupedDump
		for j := 0; j < 10; j++ {
			batch = append(batch, dumptest.Event(fmt.Sprintf("%d-%d", i, j), strconv.Itoa(j%3), time.Now()))
		}
		if _, err := s.WriteDumps(context.Background(), batch); err != nil {
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
		// The child redelivers its last acknowledged batches, as an
		// ingester whose commit was lost does.
		// The context's end kills it with SIGKILL.
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(150+50*round)*time.Millisecond)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", crashChildEnv, dir, max(acked-2, 0)))
		out, _ := cmd.Output() // killed: the error says so
		cancel()
		for _, l := range strings.Fields(string(out)) {
			if i, err := strconv.Atoi(l); err == nil && i > acked {
				acked = i
			}
		}
	}
	if acked < 0 {
		t.Fatal("the child acknowledged no batch")
	}
	s, err := Open(DefaultOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var total int64
	for j := 0; j < 3; j++ {
		is, err := s.GetIssue(context.Background(), strconv.Itoa(j))
		if err != nil {
			t.Fatal(err)
		}
		total += is.Count
	}
	stored := int64(len(s.events))
	if total != stored {
		t.Errorf("issues count %d events; the store holds %d: want them equal (each event counted once)", total, stored)
	}
	for i := 0; i <= acked; i++ {
		for j := 0; j < 10; j++ {
			if _, err := s.GetEvent(context.Background(), fmt.Sprintf("%d-%d", i, j)); err != nil {
				t.Fatalf("event %d-%d of an acknowledged batch: %v", i, j, err)
			}
		}
	}
}

// BenchmarkWriteDumps is the embedded store's write rate: batches of 100
// events of 10 issues, each fsynced.
func BenchmarkWriteDumps(b *testing.B) {
	now := t0
	s := openAt(b, b.TempDir(), &now, 30)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		batch := make([]storage.GroupedDump, 100)
		for j := range batch {
			batch[j] = dumptest.Event(strconv.Itoa(n), strconv.Itoa(n%10), t0)
			n++
		}
		if _, err := s.WriteDumps(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func TestRetentionDays(t *testing.T) {
	f := func(retention time.Duration, want int) {
		t.Helper()
		if got := RetentionDays(retention); got != want {
			t.Errorf("RetentionDays(%s) = %d; want %d", retention, got, want)
		}
	}
	f(0, 0)
	f(time.Hour, 1)
	f(24*time.Hour, 1)
	f(25*time.Hour, 2)
	f(14*24*time.Hour, 14)
}
