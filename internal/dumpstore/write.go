package dumpstore

import (
	"context"
	"fmt"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// eventMeta is what the index keeps of an event: enough to filter, sort
// and count without reading the journal, and where its JSON is.
type eventMeta struct {
	ID, IssueID, Project, Service, Env string
	Timestamp                          int64
	Tags                               []model.Attr // the event's tags and its level, environment, release and server_name
	text                               string       // lower-cased message, exception types and values, transaction, tag values
	day                                string
	off                                int64
	n                                  int
}

const maxTextBytes = 2048

func newEventMeta(d *model.Dump, off int64, n int) *eventMeta {
	m := &eventMeta{ID: d.EventID, IssueID: d.IssueID, Project: d.Project, Service: d.Service, Env: d.Environment,
		Timestamp: d.Timestamp, off: off, n: n}
	m.Tags = d.SearchTags()
	m.text = d.SearchText(maxTextBytes)
	return m
}

// WriteDumps implements storage.DumpWriter: one journal record, fsynced,
// holds the batch's new events and the new state of their issues.
func (s *Store) WriteDumps(ctx context.Context, dumps []storage.GroupedDump) ([]storage.IssueChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	now := s.opts.Now()
	j, err := s.journalFor(now)
	if err != nil {
		return nil, err
	}
	// Fold into copies: the index changes only once the record is durable.
	changed := map[string]*model.Issue{}
	var order []string
	seen := map[string]bool{}
	var docs [][]byte
	var metas []*eventMeta
	var changes []storage.IssueChange
	s.mu.RLock()
	for i := range dumps {
		d := &dumps[i].Dump
		if d.EventID == "" || d.IssueID == "" {
			s.mu.RUnlock()
			return nil, fmt.Errorf("event %d of the batch: event_id %q, issue_id %q: both are required", i, d.EventID, d.IssueID)
		}
		if _, dup := s.events[d.EventID]; dup || seen[d.EventID] {
			s.m.duplicates.Inc()
			if c, ok := s.replayedChange(d, changed); ok && !seen[d.EventID] {
				changes = append(changes, c)
			}
			seen[d.EventID] = true
			continue
		}
		seen[d.EventID] = true
		doc, err := d.EncodeJSON()
		if err != nil {
			s.mu.RUnlock()
			return nil, fmt.Errorf("cannot encode event %s: %w", d.EventID, err)
		}
		docs = append(docs, doc)
		metas = append(metas, newEventMeta(d, 0, len(doc)))
		is := changed[d.IssueID]
		if is == nil {
			if old := s.issues[d.IssueID]; old != nil {
				cp := cloneIssue(&old.Issue)
				is = &cp
			}
		}
		var kind storage.IssueChangeKind
		is, kind = storage.FoldDump(is, &dumps[i], s.opts.MaxIssueValues)
		if changed[d.IssueID] == nil {
			order = append(order, d.IssueID)
		}
		changed[d.IssueID] = is
		if kind != "" {
			changes = append(changes, storage.IssueChange{Kind: kind, Issue: *is, Event: *d})
		}
	}
	s.mu.RUnlock()
	if len(docs) == 0 {
		return changes, nil
	}
	issues := make([]model.Issue, len(order))
	for i, id := range order {
		issues[i] = *changed[id]
	}
	offs, err := j.append(docs, issues)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for i, m := range metas {
		m.off, m.day = offs[i], j.day
		s.events[m.ID] = m
		s.byTime = append(s.byTime, m)
	}
	for _, is := range issues {
		s.issues[is.ID] = &issueState{Issue: is, day: j.day}
	}
	s.m.issues.Set(float64(len(s.issues)))
	s.m.events.Set(float64(len(s.events)))
	s.mu.Unlock()
	s.m.written.Add(float64(len(docs)))
	// The issue in a change is its state after that event; report the
	// final state of issues changed again later in the batch too.
	for i := range changes {
		if is := changed[changes[i].Issue.ID]; is != nil {
			changes[i].Issue = cloneIssue(is)
		}
	}
	return changes, nil
}

// replayedChange returns the change a stored event caused, when its
// issue is still in the state it left it in. Called with mu held.
func (s *Store) replayedChange(d *model.Dump, changed map[string]*model.Issue) (storage.IssueChange, bool) {
	is := changed[d.IssueID]
	if is == nil {
		old := s.issues[d.IssueID]
		if old == nil {
			return storage.IssueChange{}, false
		}
		is = &old.Issue
	}
	switch {
	case is.FirstEventID == d.EventID:
		return storage.IssueChange{Kind: storage.IssueCreated, Issue: *is, Event: *d}, true
	case is.RegressionEventID == d.EventID && is.Status == model.IssueUnresolved:
		return storage.IssueChange{Kind: storage.IssueRegressed, Issue: *is, Event: *d}, true
	}
	return storage.IssueChange{}, false
}

func cloneIssue(is *model.Issue) model.Issue {
	cp := *is
	cp.Releases = append([]string(nil), is.Releases...)
	cp.Environments = append([]string(nil), is.Environments...)
	cp.Hosts = append([]string(nil), is.Hosts...)
	return cp
}

// SetIssueStatus implements storage.IssueStatusSetter.
func (s *Store) SetIssueStatus(ctx context.Context, id string, status model.IssueStatus, at int64) (model.Issue, error) {
	switch status {
	case model.IssueResolved, model.IssueUnresolved, model.IssueIgnored:
	default:
		return model.Issue{}, fmt.Errorf("issue status %q: want resolved, unresolved or ignored", status)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return model.Issue{}, ErrClosed
	}
	s.mu.RLock()
	old := s.issues[id]
	var is model.Issue
	if old != nil {
		is = cloneIssue(&old.Issue)
	}
	s.mu.RUnlock()
	if old == nil {
		return model.Issue{}, fmt.Errorf("issue %s: %w", id, storage.ErrIssueNotFound)
	}
	is.Status = status
	if status == model.IssueResolved {
		is.ResolvedAt = at
	}
	j, err := s.journalFor(s.opts.Now())
	if err != nil {
		return model.Issue{}, err
	}
	if _, err := j.append(nil, []model.Issue{is}); err != nil {
		return model.Issue{}, err
	}
	s.mu.Lock()
	s.issues[id] = &issueState{Issue: is, day: j.day}
	s.mu.Unlock()
	return cloneIssue(&is), nil
}
