// Package dumptest is the behaviour every dump store shares, run by the
// tests of each (internal/dumpstore, internal/esdumpstore) against a store
// of its own, as Jaeger's storage integration tests run against each
// backend.
package dumptest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Store is a dump store under test.
type Store interface {
	storage.DumpWriter
	storage.DumpReader
	storage.DumpStatsReader
	storage.IssueStatusSetter
}

// T0 is the time of the first events: 2026-03-02T10:00:00Z.
var T0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

var t0 = T0

// Run runs every shared test, each on an empty store from open.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("WriteCountsOnce", func(t *testing.T) { WriteCountsOnce(t, open(t)) })
	t.Run("Regression", func(t *testing.T) { Regression(t, open(t)) })
	t.Run("Find", func(t *testing.T) { Find(t, open(t)) })
}

// refresh makes writes visible to searches in stores that need it.
func refresh(t *testing.T, s Store) {
	t.Helper()
	if r, ok := s.(interface{ Refresh(context.Context) error }); ok {
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// Event is an event of issue at ts: a Go panic of service checkout,
// project 42, with two threads and the tag region=eu.
func Event(id, issue string, ts time.Time) storage.GroupedDump {
	return storage.GroupedDump{
		Dump: model.Dump{EventID: id, IssueID: issue, Project: "42", Service: "checkout", Grade: 1, Timestamp: ts.UnixNano(),
			Level: "fatal", Environment: "prod", Release: "v1", ServerName: "host-a", Message: "boom " + id,
			Exceptions: []model.Exception{{Type: "runtime.Error", Value: "index out of range"}},
			Threads:    []model.Thread{{ID: "1", Crashed: true, Frames: []model.Frame{{Function: "main.f", InApp: true}}}, {ID: "2", State: "chan receive"}},
			Tags:       []model.Attr{{Key: "region", Value: "eu"}}},
		Title: "runtime.Error: index out of range", Culprit: "main.f",
	}
}

// Write writes evs and returns the changes, failing t on an error.
func Write(t testing.TB, s Store, evs ...storage.GroupedDump) []storage.IssueChange {
	t.Helper()
	ch, err := s.WriteDumps(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// Issue returns issue id, failing t on an error.
func Issue(t testing.TB, s Store, id string) model.Issue {
	t.Helper()
	is, err := s.GetIssue(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// Kinds renders changes as kind:issue:event.
func Kinds(ch []storage.IssueChange) string {
	var out []string
	for _, c := range ch {
		out = append(out, string(c.Kind)+":"+c.Issue.ID+":"+c.Event.EventID)
	}
	return strings.Join(out, " ")
}

// WriteCountsOnce: events are counted once however often they are
// written, the issue takes its first event's title and culprit, and
// GetEvent returns all threads.
func WriteCountsOnce(t *testing.T, s Store) {
	batch := []storage.GroupedDump{Event("a1", "7", t0), Event("a2", "7", t0.Add(time.Second)), Event("b1", "8", t0)}
	if got, want := Kinds(Write(t, s, batch...)), "new:7:a1 new:8:b1"; got != want {
		t.Errorf("changes %q; want %q", got, want)
	}
	// The batch again (a retry after a lost commit), and a batch
	// repeating an event within itself.
	// A retried batch: stored once, its changes reported again (at least
	// once, for a write that failed after storing part of its batch).
	if got, want := Kinds(Write(t, s, batch...)), "new:7:a1 new:8:b1"; got != want {
		t.Errorf("a retried batch reported %q; want %q", got, want)
	}
	Write(t, s, Event("a3", "7", t0.Add(2*time.Second)), Event("a3", "7", t0.Add(2*time.Second)))
	is := Issue(t, s, "7")
	if is.Count != 3 || is.FirstSeen != t0.UnixNano() || is.LastSeen != t0.Add(2*time.Second).UnixNano() || is.LastEventID != "a3" {
		t.Errorf("issue 7: count %d, first %d, last %d, last event %s; want 3 distinct events, a1..a3", is.Count, is.FirstSeen, is.LastSeen, is.LastEventID)
	}
	if is.Title != "runtime.Error: index out of range" || is.Culprit != "main.f" || is.Status != model.IssueUnresolved || is.Grade != 1 {
		t.Errorf("issue 7 = %+v; want the title, culprit, grade of its first event, unresolved", is)
	}
	if fmt.Sprint(is.Releases, is.Environments, is.Hosts) != "[v1] [prod] [host-a]" {
		t.Errorf("issue 7 releases, envs, hosts = %v %v %v", is.Releases, is.Environments, is.Hosts)
	}
	refresh(t, s) // a search store finds events once refreshed
	d, err := s.GetEvent(context.Background(), "a2")
	if err != nil || len(d.Threads) != 2 || d.IssueID != "7" {
		t.Errorf("GetEvent(a2) = %d threads, issue %q, %v; want both threads, issue 7", len(d.Threads), d.IssueID, err)
	}
}

// Regression: a resolved issue is reopened by an event newer than its
// resolution only; ignored issues stay ignored.
func Regression(t *testing.T, s Store) {
	Write(t, s, Event("a1", "7", t0))
	resolvedAt := t0.Add(time.Minute).UnixNano()
	if is, err := s.SetIssueStatus(context.Background(), "7", model.IssueResolved, resolvedAt); err != nil || is.Status != model.IssueResolved {
		t.Fatalf("resolve: %+v, %v", is, err)
	}
	// Late delivery of an event from before the resolution: no regression.
	if ch := Write(t, s, Event("a0", "7", t0.Add(30*time.Second))); len(ch) != 0 {
		t.Errorf("an event from before the resolution reported %q; want nothing", Kinds(ch))
	}
	if is := Issue(t, s, "7"); is.Status != model.IssueResolved || is.Count != 2 {
		t.Errorf("after a late event: status %s, count %d; want resolved, 2", is.Status, is.Count)
	}
	ch := Write(t, s, Event("a2", "7", t0.Add(2*time.Minute)))
	if got, want := Kinds(ch), "regression:7:a2"; got != want {
		t.Errorf("changes %q; want %q", got, want)
	}
	if got, want := Kinds(Write(t, s, Event("a2", "7", t0.Add(2*time.Minute)))), "regression:7:a2"; got != want {
		t.Errorf("the regressing event again: changes %q; want %q, reported again", got, want)
	}
	is := Issue(t, s, "7")
	if is.Status != model.IssueUnresolved || is.RegressedAt != t0.Add(2*time.Minute).UnixNano() || is.ResolvedAt != resolvedAt {
		t.Errorf("after the regression: %+v; want unresolved, regressed_at the event's time", is)
	}
	// Ignored issues stay ignored.
	if _, err := s.SetIssueStatus(context.Background(), "7", model.IssueIgnored, 0); err != nil {
		t.Fatal(err)
	}
	if ch := Write(t, s, Event("a3", "7", t0.Add(3*time.Minute))); len(ch) != 0 || Issue(t, s, "7").Status != model.IssueIgnored {
		t.Errorf("an event of an ignored issue: changes %q, status %s; want none, ignored", Kinds(ch), Issue(t, s, "7").Status)
	}
	if _, err := s.SetIssueStatus(context.Background(), "nope", model.IssueResolved, 1); !errors.Is(err, storage.ErrIssueNotFound) {
		t.Errorf("resolve an unknown issue: %v; want ErrIssueNotFound", err)
	}
}

// Find: the readers' filters, sorts, pages, counts, tags and projects.
func Find(t *testing.T, s Store) {
	for i := 0; i < 5; i++ {
		e := Event(fmt.Sprintf("e%d", i), strconv.Itoa(i%2), t0.Add(time.Duration(i)*time.Minute))
		if i == 4 {
			e.Dump.Service, e.Dump.Project, e.Dump.Environment, e.Dump.IssueID = "cart", "43", "staging", "9"
			e.Title = "disk full"
		}
		Write(t, s, e)
	}
	ctx := context.Background()
	refresh(t, s)
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
