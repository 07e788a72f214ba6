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
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

const crashChildEnv = "VIGIL_DUMPSTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// t0 is 2026-03-02T10:00:00Z in ns.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func clock(at *time.Time) func() time.Time { return func() time.Time { return *at } }

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

func event(id, issue string, ts time.Time) storage.GroupedDump {
	return storage.GroupedDump{
		Dump: model.Dump{EventID: id, IssueID: issue, Project: "42", Service: "checkout", Grade: 1, Timestamp: ts.UnixNano(),
			Level: "fatal", Environment: "prod", Release: "v1", ServerName: "host-a", Message: "boom " + id,
			Exceptions: []model.Exception{{Type: "runtime.Error", Value: "index out of range"}},
			Threads:    []model.Thread{{ID: "1", Crashed: true, Frames: []model.Frame{{Function: "main.f", InApp: true}}}, {ID: "2", State: "chan receive"}},
			Tags:       []model.Attr{{Key: "region", Value: "eu"}}},
		Title: "runtime.Error: index out of range", Culprit: "main.f",
	}
}

func write(t testing.TB, s *Store, evs ...storage.GroupedDump) []storage.IssueChange {
	t.Helper()
	ch, err := s.WriteDumps(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func issue(t testing.TB, s *Store, id string) model.Issue {
	t.Helper()
	is, err := s.GetIssue(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func kinds(ch []storage.IssueChange) string {
	var out []string
	for _, c := range ch {
		out = append(out, string(c.Kind)+":"+c.Issue.ID+":"+c.Event.EventID)
	}
	return strings.Join(out, " ")
}

func TestWriteCountsOnce(t *testing.T) {
	now := t0
	s := openAt(t, t.TempDir(), &now, 30)
	batch := []storage.GroupedDump{event("a1", "7", t0), event("a2", "7", t0.Add(time.Second)), event("b1", "8", t0)}
	if got, want := kinds(write(t, s, batch...)), "new:7:a1 new:8:b1"; got != want {
		t.Errorf("changes %q; want %q", got, want)
	}
	// The batch again (a retry after a lost commit), and a batch
	// repeating an event within itself.
	// A retried batch: stored once, its changes reported again (at least
	// once, for a write that failed after storing part of its batch).
	if got, want := kinds(write(t, s, batch...)), "new:7:a1 new:8:b1"; got != want {
		t.Errorf("a retried batch reported %q; want %q", got, want)
	}
	write(t, s, event("a3", "7", t0.Add(2*time.Second)), event("a3", "7", t0.Add(2*time.Second)))
	is := issue(t, s, "7")
	if is.Count != 3 || is.FirstSeen != t0.UnixNano() || is.LastSeen != t0.Add(2*time.Second).UnixNano() || is.LastEventID != "a3" {
		t.Errorf("issue 7: count %d, first %d, last %d, last event %s; want 3 distinct events, a1..a3", is.Count, is.FirstSeen, is.LastSeen, is.LastEventID)
	}
	if is.Title != "runtime.Error: index out of range" || is.Culprit != "main.f" || is.Status != model.IssueUnresolved || is.Grade != 1 {
		t.Errorf("issue 7 = %+v; want the title, culprit, grade of its first event, unresolved", is)
	}
	if fmt.Sprint(is.Releases, is.Environments, is.Hosts) != "[v1] [prod] [host-a]" {
		t.Errorf("issue 7 releases, envs, hosts = %v %v %v", is.Releases, is.Environments, is.Hosts)
	}
	d, err := s.GetEvent(context.Background(), "a2")
	if err != nil || len(d.Threads) != 2 || d.IssueID != "7" {
		t.Errorf("GetEvent(a2) = %d threads, issue %q, %v; want both threads, issue 7", len(d.Threads), d.IssueID, err)
	}
}

func TestRegression(t *testing.T) {
	now := t0
	s := openAt(t, t.TempDir(), &now, 30)
	write(t, s, event("a1", "7", t0))
	resolvedAt := t0.Add(time.Minute).UnixNano()
	if is, err := s.SetIssueStatus(context.Background(), "7", model.IssueResolved, resolvedAt); err != nil || is.Status != model.IssueResolved {
		t.Fatalf("resolve: %+v, %v", is, err)
	}
	// Late delivery of an event from before the resolution: no regression.
	if ch := write(t, s, event("a0", "7", t0.Add(30*time.Second))); len(ch) != 0 {
		t.Errorf("an event from before the resolution reported %q; want nothing", kinds(ch))
	}
	if is := issue(t, s, "7"); is.Status != model.IssueResolved || is.Count != 2 {
		t.Errorf("after a late event: status %s, count %d; want resolved, 2", is.Status, is.Count)
	}
	ch := write(t, s, event("a2", "7", t0.Add(2*time.Minute)))
	if got, want := kinds(ch), "regression:7:a2"; got != want {
		t.Errorf("changes %q; want %q", got, want)
	}
	if got, want := kinds(write(t, s, event("a2", "7", t0.Add(2*time.Minute)))), "regression:7:a2"; got != want {
		t.Errorf("the regressing event again: changes %q; want %q, reported again", got, want)
	}
	is := issue(t, s, "7")
	if is.Status != model.IssueUnresolved || is.RegressedAt != t0.Add(2*time.Minute).UnixNano() || is.ResolvedAt != resolvedAt {
		t.Errorf("after the regression: %+v; want unresolved, regressed_at the event's time", is)
	}
	// Ignored issues stay ignored.
	if _, err := s.SetIssueStatus(context.Background(), "7", model.IssueIgnored, 0); err != nil {
		t.Fatal(err)
	}
	if ch := write(t, s, event("a3", "7", t0.Add(3*time.Minute))); len(ch) != 0 || issue(t, s, "7").Status != model.IssueIgnored {
		t.Errorf("an event of an ignored issue: changes %q, status %s; want none, ignored", kinds(ch), issue(t, s, "7").Status)
	}
	if _, err := s.SetIssueStatus(context.Background(), "nope", model.IssueResolved, 1); !errorsIs(err, storage.ErrIssueNotFound) {
		t.Errorf("resolve an unknown issue: %v; want ErrIssueNotFound", err)
	}
}

func TestRestartAndTornTail(t *testing.T) {
	dir := t.TempDir()
	now := t0
	s := openAt(t, dir, &now, 30)
	write(t, s, event("a1", "7", t0), event("a2", "7", t0))
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
	is := issue(t, s, "7")
	if is.Count != 2 || is.Status != model.IssueResolved {
		t.Errorf("after restart: count %d, status %s; want 2, resolved", is.Count, is.Status)
	}
	if ch := write(t, s, event("a2", "7", t0), event("a3", "7", t0.Add(2*time.Hour))); kinds(ch) != "regression:7:a3" {
		t.Errorf("after restart: changes %q; want the duplicate skipped and a regression", kinds(ch))
	}
	s.Close()
	s = openAt(t, dir, &now, 30)
	if is := issue(t, s, "7"); is.Count != 3 || is.Status != model.IssueUnresolved {
		t.Errorf("after a second restart: count %d, status %s; want 3, unresolved", is.Count, is.Status)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := t0
	s := openAt(t, dir, &now, 2)
	write(t, s, event("old", "1", t0), event("a1", "7", t0))
	now = t0.Add(24 * time.Hour)
	write(t, s, event("a2", "7", now))
	now = t0.Add(48 * time.Hour) // day 0 is now past a 2-day retention
	write(t, s, event("b1", "8", now))
	if _, err := os.Stat(filepath.Join(dir, "2026-03-02.dumps")); !os.IsNotExist(err) {
		t.Errorf("the journal of day 0 is still there (%v); want it deleted", err)
	}
	if _, err := s.GetIssue(context.Background(), "1"); !errorsIs(err, storage.ErrIssueNotFound) {
		t.Errorf("issue 1, last seen on day 0: %v; want deleted", err)
	}
	if _, err := s.GetEvent(context.Background(), "a1"); !errorsIs(err, storage.ErrEventNotFound) {
		t.Errorf("event a1 of day 0: %v; want deleted", err)
	}
	s.Close()
	s = openAt(t, dir, &now, 2)
	// Issue 7's latest state was written on day 1; its count includes the
	// event of day 0.
	if is := issue(t, s, "7"); is.Count != 2 {
		t.Errorf("issue 7 after retention and restart: count %d; want 2", is.Count)
	}
}

func TestFind(t *testing.T) {
	now := t0
	s := openAt(t, t.TempDir(), &now, 30)
	for i := 0; i < 5; i++ {
		e := event(fmt.Sprintf("e%d", i), strconv.Itoa(i%2), t0.Add(time.Duration(i)*time.Minute))
		if i == 4 {
			e.Dump.Service, e.Dump.Project, e.Dump.Environment, e.Dump.IssueID = "cart", "43", "staging", "9"
			e.Title = "disk full"
		}
		write(t, s, e)
	}
	ctx := context.Background()
	f := func(q storage.IssueQuery, want string) {
		t.Helper()
		got, _, err := s.FindIssues(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, is := range got {
			ids = append(ids, is.ID)
		}
		if strings.Join(ids, ",") != want {
			t.Errorf("FindIssues(%+v) = %v; want %s", q, ids, want)
		}
	}
	f(storage.IssueQuery{}, "9,1,0")
	f(storage.IssueQuery{Sort: storage.SortCount}, "0,1,9")
	f(storage.IssueQuery{Sort: storage.SortFirstSeen}, "9,1,0")
	f(storage.IssueQuery{Services: []string{"checkout"}}, "1,0")
	f(storage.IssueQuery{Projects: []string{"43"}}, "9")
	f(storage.IssueQuery{Environments: []string{"staging"}}, "9")
	f(storage.IssueQuery{Text: "DISK"}, "9")
	f(storage.IssueQuery{Start: t0.Add(4 * time.Minute).UnixNano()}, "9")
	f(storage.IssueQuery{End: t0.Add(time.Minute).UnixNano()}, "0")
	f(storage.IssueQuery{Statuses: []model.IssueStatus{model.IssueResolved}}, "")
	f(storage.IssueQuery{Grade: 2}, "")
	f(storage.IssueQuery{Levels: []string{"fatal"}}, "9,1,0")
	f(storage.IssueQuery{Levels: []string{"error", "warning"}}, "")

	page1, next, err := s.FindIssues(ctx, storage.IssueQuery{Limit: 2})
	if err != nil || len(page1) != 2 || next == "" {
		t.Fatalf("page 1: %d issues, next %q, %v", len(page1), next, err)
	}
	page2, next2, err := s.FindIssues(ctx, storage.IssueQuery{Limit: 2, Cursor: next})
	if err != nil || len(page2) != 1 || page2[0].ID != "0" || next2 != "" {
		t.Errorf("page 2: %v, next %q, %v; want issue 0 and no next page", page2, next2, err)
	}

	evs, _, err := s.FindEvents(ctx, storage.EventQuery{IssueID: "0", Limit: 10})
	if err != nil || len(evs) != 2 || evs[0].EventID != "e2" || evs[0].Threads != nil {
		t.Errorf("events of issue 0: %d, first %v, %v; want e2 and e0, newest first, without threads", len(evs), evs, err)
	}
	counts, err := s.CountEvents(ctx, storage.EventQuery{Services: []string{"checkout"}, Start: t0.UnixNano(), End: t0.Add(4 * time.Minute).UnixNano()}, int64(2*time.Minute))
	if err != nil || fmt.Sprint(counts) != "[2 2]" {
		t.Errorf("CountEvents = %v, %v; want [2 2]", counts, err)
	}
	tags, err := s.DumpTags(ctx, storage.EventQuery{}, 10)
	if err != nil || fmt.Sprint(tags) != "[{environment [prod staging] 2} {level [fatal] 1} {region [eu] 1} {release [v1] 1} {server_name [host-a] 1}]" {
		t.Errorf("DumpTags = %v, %v", tags, err)
	}
	projects, err := s.DumpProjects(ctx)
	if err != nil || fmt.Sprint(projects) != fmt.Sprintf("[{42 checkout [prod] %d} {43 cart [staging] %d}]", t0.UnixNano(), t0.Add(4*time.Minute).UnixNano()) {
		t.Errorf("DumpProjects = %v, %v", projects, err)
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
			batch = append(batch, event(fmt.Sprintf("%d-%d", i, j), strconv.Itoa(j%3), time.Now()))
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
			batch[j] = event(strconv.Itoa(n), strconv.Itoa(n%10), t0)
			n++
		}
		if _, err := s.WriteDumps(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
