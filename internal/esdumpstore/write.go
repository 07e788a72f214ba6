package esdumpstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// eventDoc is an event document.
type eventDoc struct {
	EventID     string          `json:"event_id"`
	IssueID     string          `json:"issue_id"`
	Project     string          `json:"project"`
	Service     string          `json:"service"`
	Environment string          `json:"environment,omitempty"`
	Level       string          `json:"level,omitempty"`
	Release     string          `json:"release,omitempty"`
	Timestamp   int64           `json:"timestamp"`
	TimestampMs int64           `json:"@timestamp"`
	Tags        []string        `json:"tags,omitempty"` // "key=value", model.Dump.SearchTags
	Text        string          `json:"text"`           // lower-cased, searched by substring
	Folded      bool            `json:"folded"`         // true once the issue counts it
	Title       string          `json:"title,omitempty"`
	Culprit     string          `json:"culprit,omitempty"`
	Dump        json.RawMessage `json:"dump"` // the model.Dump
}

const maxTextBytes = 2048

func toDoc(g *storage.GroupedDump) (eventDoc, error) {
	d := &g.Dump
	raw, err := json.Marshal(d)
	if err != nil {
		return eventDoc{}, fmt.Errorf("cannot encode event %s: %w", d.EventID, err)
	}
	doc := eventDoc{EventID: d.EventID, IssueID: d.IssueID, Project: d.Project, Service: d.Service, Environment: d.Environment,
		Level: d.Level, Release: d.Release, Timestamp: d.Timestamp, TimestampMs: d.Timestamp / 1e6,
		Title: g.Title, Culprit: g.Culprit, Dump: raw}
	for _, t := range d.SearchTags() {
		doc.Tags = append(doc.Tags, t.Key+"="+t.Value)
	}
	doc.Text = d.SearchText(maxTextBytes)
	return doc, nil
}

// WriteDumps implements storage.DumpWriter in four steps, each safe to
// repeat: (1) bulk create of the event documents, folded=false; (2) for
// events already stored, a look at whether their issue counts them yet;
// (3) per issue, a compare-and-set of its document (read it, fold in the
// events it does not count yet, write it back only if nobody wrote it in
// between: if_seq_no and if_primary_term, or create for a new issue;
// re-read and fold again on a conflict), the document remembering the
// last events it folded; (4) the folded events marked folded=true. A write
// that fails at any step is retried by the ingester and completes the
// steps left, so each event is counted once, and two ingesters folding
// the same event meet on the issue's version: one wins, the other re-reads
// and finds the event counted. (No script: the update needs no scripting
// module on the cluster.)
func (s *Store) WriteDumps(ctx context.Context, dumps []storage.GroupedDump) ([]storage.IssueChange, error) {
	first := map[string]int{} // event id → index of its first copy in dumps
	var order []int
	for i := range dumps {
		d := &dumps[i].Dump
		if d.EventID == "" || d.IssueID == "" {
			return nil, fmt.Errorf("event %d of the batch: event_id %q, issue_id %q: both are required", i, d.EventID, d.IssueID)
		}
		if _, ok := first[d.EventID]; !ok {
			first[d.EventID] = i
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	created, dup, rejected, err := s.createEvents(ctx, dumps, order)
	if err != nil {
		return nil, err
	}
	var toFold, dups []int
	for _, i := range order {
		switch {
		case created[i]:
			toFold = append(toFold, i)
		case dup[i]:
			dups = append(dups, i)
		}
	}
	if len(dups) > 0 {
		unfolded, err := s.unfolded(ctx, dumps, dups)
		if err != nil {
			return nil, err
		}
		toFold = append(toFold, unfolded...)
	}
	if err := s.fold(ctx, dumps, toFold); err != nil {
		return nil, err
	}
	if err := s.markFolded(ctx, dumps, toFold); err != nil {
		return nil, err
	}
	var stored []int
	for _, i := range order {
		if created[i] || dup[i] {
			stored = append(stored, i)
		}
	}
	changes, err := s.changes(ctx, dumps, stored)
	if err != nil {
		return nil, err
	}
	if len(rejected) > 0 {
		return changes, &storage.RejectedError{Items: rejected}
	}
	return changes, nil
}

// send writes bulk lines (action and document each), resending transient
// failures, and calls done for each.
func (s *Store) send(ctx context.Context, lines [][]byte, done func(i int, r es.ItemResult) error) error {
	if len(lines) == 0 {
		return nil
	}
	idx := make([]int, len(lines))
	for i := range idx {
		idx[i] = i
	}
	body := func(idx []int) []byte {
		var b []byte
		for _, i := range idx {
			b = append(b, lines[i]...)
		}
		return b
	}
	return s.bulk.Send(ctx, idx, body, done)
}

func bulkLine(action string, meta obj, doc any) ([]byte, error) {
	a, err := json.Marshal(obj{action: meta})
	if err != nil {
		return nil, err
	}
	d, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append(append(append(a, '\n'), d...), '\n'), nil
}

// createEvents is step 1.
func (s *Store) createEvents(ctx context.Context, dumps []storage.GroupedDump, order []int) (created, dup map[int]bool, rejected []storage.Rejection, err error) {
	lines := make([][]byte, len(order))
	for k, i := range order {
		doc, err := toDoc(&dumps[i])
		if err != nil {
			return nil, nil, nil, err
		}
		if lines[k], err = bulkLine("create", obj{"_index": s.eventIndex(doc.Timestamp), "_id": doc.EventID}, doc); err != nil {
			return nil, nil, nil, err
		}
	}
	created, dup = map[int]bool{}, map[int]bool{}
	err = s.send(ctx, lines, func(k int, r es.ItemResult) error {
		i := order[k]
		switch r.Outcome {
		case es.Created:
			s.m.indexed.Inc()
			created[i] = true
		case es.Duplicate:
			s.m.duplicate.Inc()
			dup[i] = true
		case es.Rejected:
			s.m.rejected.Inc()
			rejected = append(rejected, storage.Rejection{Index: i, Reason: fmt.Sprintf("status %d: %s", r.Status, r.Reason)})
		default:
			//lint:ignore ST1005 it begins with the name Elasticsearch
			return fmt.Errorf("Elasticsearch refused event %s: status %d: %s", dumps[i].Dump.EventID, r.Status, r.Reason)
		}
		return nil
	})
	return created, dup, rejected, err
}

// mgetDoc is one document of a multi-get answer.
type mgetDoc struct {
	Found       bool            `json:"found"`
	Source      json.RawMessage `json:"_source"`
	SeqNo       int64           `json:"_seq_no"`
	PrimaryTerm int64           `json:"_primary_term"`
	Error       json.RawMessage `json:"error"`
}

// mget returns the documents (or nil where not found) of (index, id)
// pairs, with the source fields given.
func (s *Store) mget(ctx context.Context, refs [][2]string, fields []string) ([]json.RawMessage, error) {
	docs, err := s.mgetDocs(ctx, refs, fields)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(refs))
	for i, d := range docs {
		if d.Found {
			out[i] = d.Source
		}
	}
	return out, nil
}

// mgetVersioned returns whole documents with their versions.
func (s *Store) mgetVersioned(ctx context.Context, refs [][2]string) ([]mgetDoc, error) {
	return s.mgetDocs(ctx, refs, nil)
}

func (s *Store) mgetDocs(ctx context.Context, refs [][2]string, fields []string) ([]mgetDoc, error) {
	docs := make([]obj, len(refs))
	for i, r := range refs {
		docs[i] = obj{"_index": r[0], "_id": r[1]}
		if fields != nil {
			docs[i]["_source"] = fields
		}
	}
	body, _ := json.Marshal(obj{"docs": docs})
	status, resp, err := s.c.Do(ctx, http.MethodPost, "/_mget", body, "")
	if err != nil {
		return nil, fmt.Errorf("cannot get %d documents: %w", len(refs), err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("cannot get %d documents: status %d: %s", len(refs), status, es.ErrorReason(resp))
	}
	var r struct {
		Docs []mgetDoc `json:"docs"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || len(r.Docs) != len(refs) {
		return nil, fmt.Errorf("cannot parse the answer to a multi-get of %d documents: %v", len(refs), err)
	}
	for i, d := range r.Docs {
		if d.Error != nil {
			return nil, fmt.Errorf("cannot get document %s/%s: %s", refs[i][0], refs[i][1], es.ErrorReason(d.Error))
		}
	}
	return r.Docs, nil
}

// unfolded is step 2: the events of idx (already stored) their issue does
// not count yet.
func (s *Store) unfolded(ctx context.Context, dumps []storage.GroupedDump, idx []int) ([]int, error) {
	refs := make([][2]string, len(idx))
	for k, i := range idx {
		d := &dumps[i].Dump
		refs[k] = [2]string{s.eventIndex(d.Timestamp), d.EventID}
	}
	docs, err := s.mget(ctx, refs, []string{"folded"})
	if err != nil {
		return nil, err
	}
	var out []int
	for k, raw := range docs {
		var d struct {
			Folded bool `json:"folded"`
		}
		if raw != nil && json.Unmarshal(raw, &d) == nil && d.Folded {
			continue
		}
		out = append(out, idx[k])
	}
	return out, nil
}

// issueDoc is an issue document: the issue and the events last folded in.
type issueDoc struct {
	model.Issue
	FoldedIDs []string `json:"folded_ids,omitempty"`
}

// versioned is an issue document as read, with its version.
type versioned struct {
	doc         *issueDoc // nil: no such issue yet
	seqNo, term int64
}

// readIssues reads issue documents with their versions (real time).
func (s *Store) readIssues(ctx context.Context, ids []string) (map[string]versioned, error) {
	refs := make([][2]string, len(ids))
	for k, id := range ids {
		refs[k] = [2]string{s.issueIndex(), id}
	}
	docs, err := s.mgetVersioned(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]versioned, len(ids))
	for k, d := range docs {
		v := versioned{seqNo: d.SeqNo, term: d.PrimaryTerm}
		if d.Found {
			v.doc = new(issueDoc)
			if err := json.Unmarshal(d.Source, v.doc); err != nil {
				return nil, fmt.Errorf("cannot parse issue %s: %w", ids[k], err) // #nosec G602 -- mgetVersioned returns exactly one doc per id
			}
		}
		out[ids[k]] = v // #nosec G602 -- mgetVersioned returns exactly one doc per id
	}
	return out, nil
}

// maxFoldRounds bounds the compare-and-set rounds of one write; each
// round loses only to another writer that changed the same issue.
const maxFoldRounds = 100

// fold is step 3.
func (s *Store) fold(ctx context.Context, dumps []storage.GroupedDump, idx []int) error {
	byIssue := map[string][]int{}
	var pending []string
	for _, i := range idx {
		id := dumps[i].Dump.IssueID
		if byIssue[id] == nil {
			pending = append(pending, id)
		}
		byIssue[id] = append(byIssue[id], i)
	}
	for round := 1; len(pending) > 0; round++ {
		if round > maxFoldRounds {
			return fmt.Errorf("cannot update %d issues: still changed by other writers after %d attempts", len(pending), maxFoldRounds)
		}
		current, err := s.readIssues(ctx, pending)
		if err != nil {
			return err
		}
		var lines [][]byte
		var ids []string
		for _, id := range pending {
			v := current[id]
			doc, changed := foldInto(v.doc, dumps, byIssue[id])
			if !changed {
				continue
			}
			meta := obj{"_index": s.issueIndex(), "_id": id}
			action := "create"
			if v.doc != nil {
				action, meta["if_seq_no"], meta["if_primary_term"] = "index", v.seqNo, v.term
			}
			line, err := bulkLine(action, meta, doc)
			if err != nil {
				return err
			}
			lines, ids = append(lines, line), append(ids, id)
		}
		var conflicts []string
		err = s.send(ctx, lines, func(k int, r es.ItemResult) error {
			switch r.Outcome {
			case es.Created:
				s.m.folded.Inc()
			case es.Duplicate: // 409: another writer changed the issue first
				s.m.conflicts.Inc()
				conflicts = append(conflicts, ids[k])
			default:
				return fmt.Errorf("cannot update issue %s: status %d: %s", ids[k], r.Status, r.Reason)
			}
			return nil
		})
		if err != nil {
			return err
		}
		pending = conflicts
	}
	return nil
}

// foldInto folds the events idx into doc (nil: a new issue), skipping
// those it remembers folding, and reports whether anything changed.
func foldInto(doc *issueDoc, dumps []storage.GroupedDump, idx []int) (*issueDoc, bool) {
	var is *model.Issue
	var folded []string
	if doc != nil {
		is, folded = &doc.Issue, doc.FoldedIDs
	}
	changed := false
	for _, i := range idx {
		if slices.Contains(folded, dumps[i].Dump.EventID) {
			continue
		}
		is, _ = storage.FoldDump(is, &dumps[i], maxIssueValues)
		folded = append(folded, dumps[i].Dump.EventID)
		changed = true
	}
	if len(folded) > foldedIDs {
		folded = folded[len(folded)-foldedIDs:]
	}
	if !changed {
		return doc, false
	}
	return &issueDoc{Issue: *is, FoldedIDs: folded}, true
}

// updateConflictRetries is how often Elasticsearch itself retries a
// partial update that raced another writer's update of the same event
// (two ingesters folding the same redelivered event): setting one field
// to the same value, the retry always succeeds.
const updateConflictRetries = 5

// markFolded is step 4.
func (s *Store) markFolded(ctx context.Context, dumps []storage.GroupedDump, idx []int) error {
	lines := make([][]byte, len(idx))
	for k, i := range idx {
		d := &dumps[i].Dump
		var err error
		if lines[k], err = bulkLine("update", obj{"_index": s.eventIndex(d.Timestamp), "_id": d.EventID, "retry_on_conflict": updateConflictRetries}, obj{"doc": obj{"folded": true}}); err != nil {
			return err
		}
	}
	return s.send(ctx, lines, func(k int, r es.ItemResult) error {
		if r.Outcome != es.Created {
			return fmt.Errorf("cannot mark event %s counted: status %d: %s", dumps[idx[k]].Dump.EventID, r.Status, r.Reason)
		}
		return nil
	})
}

// changes reads the issues of the stored events idx and returns the
// changes those events caused and their issues are still in (see
// storage.IssueChange).
func (s *Store) changes(ctx context.Context, dumps []storage.GroupedDump, idx []int) ([]storage.IssueChange, error) {
	var ids []string
	seen := map[string]bool{}
	for _, i := range idx {
		if id := dumps[i].Dump.IssueID; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	refs := make([][2]string, len(ids))
	for k, id := range ids {
		refs[k] = [2]string{s.issueIndex(), id}
	}
	docs, err := s.mget(ctx, refs, issueFields)
	if err != nil {
		return nil, err
	}
	issues := map[string]*model.Issue{}
	for k, raw := range docs {
		if raw == nil {
			continue
		}
		var is model.Issue
		if err := json.Unmarshal(raw, &is); err != nil {
			return nil, fmt.Errorf("cannot parse issue %s: %w", ids[k], err)
		}
		issues[ids[k]] = &is
	}
	var out []storage.IssueChange
	for _, i := range idx {
		d := &dumps[i].Dump
		is := issues[d.IssueID]
		switch {
		case is == nil:
		case is.FirstEventID == d.EventID:
			out = append(out, storage.IssueChange{Kind: storage.IssueCreated, Issue: *is, Event: *d})
		case is.RegressionEventID == d.EventID && is.Status == model.IssueUnresolved:
			out = append(out, storage.IssueChange{Kind: storage.IssueRegressed, Issue: *is, Event: *d})
		}
	}
	return out, nil
}

// issueFields are the source fields of an issue document that make a
// model.Issue (folded_ids left out).
var issueFields = []string{"id", "project", "service", "grade", "title", "culprit", "level", "status", "first_seen", "last_seen", "count",
	"releases", "environments", "hosts", "resolved_at", "regressed_at", "last_event_id", "first_event_id", "regression_event_id"}
