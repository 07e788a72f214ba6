package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vigilhq/vigil/internal/model"
)

// ErrIssueNotFound is returned (wrapped or not) for an issue id no store
// holds; the query API answers 404.
var ErrIssueNotFound = errors.New("issue not found")

// ErrEventNotFound is returned (wrapped or not) for an event id no store
// holds; the query API answers 404.
var ErrEventNotFound = errors.New("event not found")

// GroupedDump is one event ready to store: the dump with its IssueID set
// by the grouping, and the issue's title and culprit as that grouping
// derives them from this event (used when the event opens the issue).
type GroupedDump struct {
	Dump    model.Dump
	Title   string
	Culprit string
}

// IssueChangeKind says what an event did to its issue.
type IssueChangeKind string

// The issue changes a DumpWriter reports.
const (
	// IssueCreated: the event is the first of a new issue.
	IssueCreated IssueChangeKind = "new"
	// IssueRegressed: the event arrived after the issue was resolved and
	// reopened it.
	IssueRegressed IssueChangeKind = "regression"
)

// IssueChange is a change of an issue an event caused. It is reported by
// the write that stored the event and again by any later write of the
// same event (a retried batch) while the issue is still in that state
// (its FirstEventID, or its RegressionEventID and unresolved): at least
// once, so that a write that failed after storing part of its batch loses
// no notification.
type IssueChange struct {
	Kind IssueChangeKind
	// Issue is the issue as the change left it.
	Issue model.Issue
	// Event is the event that caused the change.
	Event model.Dump
}

// DumpWriter is where the dumps ingester writes grouped events.
type DumpWriter interface {
	// WriteDumps stores the events and folds each newly stored one into
	// its issue exactly once: count +1, first and last seen, last event,
	// releases, environments and hosts; a new issue is created from the
	// event, a resolved issue whose ResolvedAt is before the event's
	// timestamp is reopened (status unresolved, RegressedAt set); an
	// ignored issue stays ignored. An event whose event_id is already
	// stored is skipped and changes nothing, so a retried batch, or the
	// same event consumed by two ingesters, counts once. It returns nil
	// only once every event and its issue are durable, with the issue
	// changes the events caused, in batch order (see IssueChange). After
	// an error some events may be stored: writing the batch again stores
	// the rest and reports the changes of all of them.
	WriteDumps(ctx context.Context, dumps []GroupedDump) ([]IssueChange, error)
}

// IssueStatusSetter changes the status of issues (the query API's resolve,
// ignore and unresolve).
type IssueStatusSetter interface {
	// SetIssueStatus sets the status of issue id and returns the issue as
	// it is now. Resolving sets ResolvedAt to at (Unix ns): later events
	// reopen the issue as a regression. It returns ErrIssueNotFound
	// (wrapped or not) for an unknown id.
	SetIssueStatus(ctx context.Context, id string, status model.IssueStatus, at int64) (model.Issue, error)
}

// DumpReader reads issues and their events. Everything returned belongs to
// the caller.
type DumpReader interface {
	// FindIssues returns the issues matching q, sorted by q.Sort, at most
	// q.Limit of them starting at q.Cursor, and the cursor of the next
	// page ("" when there is none).
	FindIssues(ctx context.Context, q IssueQuery) (issues []model.Issue, next string, err error)
	// GetIssue returns one issue, or ErrIssueNotFound (wrapped or not).
	GetIssue(ctx context.Context, id string) (model.Issue, error)
	// FindEvents returns the events matching q, newest first, at most
	// q.Limit of them starting at q.Cursor, and the cursor of the next
	// page ("" when there is none). Threads are left out of the returned
	// dumps; GetEvent has them.
	FindEvents(ctx context.Context, q EventQuery) (events []model.Dump, next string, err error)
	// GetEvent returns one event with all its threads, or
	// ErrEventNotFound (wrapped or not).
	GetEvent(ctx context.Context, eventID string) (model.Dump, error)
}

// DumpStatsReader answers the aggregate questions of dashboards.
type DumpStatsReader interface {
	// CountEvents returns the number of events matching q in each interval
	// [q.Start + i*step, q.Start + (i+1)*step) up to q.End, in order.
	CountEvents(ctx context.Context, q EventQuery, step int64) ([]int64, error)
	// DumpProjects returns the projects with stored issues, sorted by
	// project id.
	DumpProjects(ctx context.Context) ([]DumpProject, error)
	// DumpTags returns the tag keys of the events matching q, sorted, each
	// with its distinct values (sorted, at most maxValues of them) and the
	// number of distinct values.
	DumpTags(ctx context.Context, q EventQuery, maxValues int) ([]DumpTag, error)
}

// IssueSort orders FindIssues' results; ties are broken by issue id.
type IssueSort string

// Issue orders, newest or largest first.
const (
	SortLastSeen  IssueSort = "last_seen" // the default
	SortFirstSeen IssueSort = "first_seen"
	SortCount     IssueSort = "count"
)

// IssueQuery selects issues. Zero values select everything.
type IssueQuery struct {
	// Projects and Services select issues of any of them (a Sentry project
	// is a Vigil service: the API may fill either).
	Projects []string
	Services []string
	// Environments selects issues seen in any of them.
	Environments []string
	// Grade selects issues of services of this grade (1–4); 0 is any.
	Grade int
	// Statuses selects issues in any of these statuses.
	Statuses []model.IssueStatus
	// Levels selects issues whose level (that of their latest event) is
	// any of these.
	Levels []string
	// Start and End (Unix ns, End exclusive; 0 unbounded) select issues
	// seen in the range: last seen at or after Start, first seen before End.
	Start, End int64
	// Text selects issues whose title, culprit or id contains it, ignoring
	// ASCII case.
	Text string
	Sort IssueSort
	// Limit is the most issues returned; 0 is the store's default (100).
	Limit int
	// Cursor is the next value FindIssues returned; "" is the first page.
	Cursor string
}

// EventQuery selects events. Zero values select everything.
type EventQuery struct {
	Projects     []string
	Services     []string
	Environments []string
	IssueID      string
	// Start and End bound the event timestamp (Unix ns, End exclusive; 0
	// unbounded).
	Start, End int64
	// Text selects events whose message, exception type or value, issue
	// title or tag value contains it, ignoring ASCII case.
	Text string
	// Tags selects events with each of these tag values.
	Tags  map[string]string
	Limit int // 0 is the store's default (100)
	// Cursor is the next value FindEvents returned; "" is the first page.
	Cursor string
}

// DumpProject is a Sentry project (a Vigil service) with dumps.
type DumpProject struct {
	ID           string
	Service      string
	Environments []string // sorted
	FirstSeen    int64    // Unix ns, of its first issue
}

// DumpTag is a tag key of events and its values.
type DumpTag struct {
	Key         string
	Values      []string
	TotalValues int
}

// DefaultDumpLimit is the page size of FindIssues and FindEvents when the
// query gives none; MaxDumpLimit is the largest page a store returns.
const (
	DefaultDumpLimit = 100
	MaxDumpLimit     = 1000
)

// DumpPage parses the cursor of a FindIssues or FindEvents query — both
// dump stores' cursors are the offset of the page, in decimal — and bounds
// its limit: DefaultDumpLimit when 0, at most MaxDumpLimit.
func DumpPage(cursor string, limit int) (offset, n int, err error) {
	if cursor != "" {
		if offset, err = strconv.Atoi(cursor); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("cursor %q: not a cursor a dump store returned", cursor)
		}
	}
	switch {
	case limit <= 0:
		limit = DefaultDumpLimit
	case limit > MaxDumpLimit:
		limit = MaxDumpLimit
	}
	return offset, limit, nil
}
