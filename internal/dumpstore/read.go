package dumpstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// FindIssues implements storage.DumpReader. The cursor is the offset of
// the page.
func (s *Store) FindIssues(ctx context.Context, q storage.IssueQuery) ([]model.Issue, string, error) {
	offset, limit, err := storage.DumpPage(q.Cursor, q.Limit)
	if err != nil {
		return nil, "", err
	}
	text := strings.ToLower(q.Text)
	var found []model.Issue
	s.mu.RLock()
	for _, is := range s.issues {
		if matchIssue(&is.Issue, &q, text) {
			found = append(found, cloneIssue(&is.Issue))
		}
	}
	s.mu.RUnlock()
	key := func(is *model.Issue) int64 {
		switch q.Sort {
		case storage.SortFirstSeen:
			return is.FirstSeen
		case storage.SortCount:
			return is.Count
		}
		return is.LastSeen
	}
	sort.Slice(found, func(i, j int) bool {
		if a, b := key(&found[i]), key(&found[j]); a != b {
			return a > b
		}
		return found[i].ID < found[j].ID
	})
	return cut(found, offset, limit)
}

func matchIssue(is *model.Issue, q *storage.IssueQuery, text string) bool {
	if !anyOf(q.Projects, is.Project, q.Services, is.Service) {
		return false
	}
	if len(q.Environments) > 0 && !slices.ContainsFunc(is.Environments, func(e string) bool { return slices.Contains(q.Environments, e) }) {
		return false
	}
	if q.Grade != 0 && is.Grade != q.Grade {
		return false
	}
	if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, is.Status) || len(q.Levels) > 0 && !slices.Contains(q.Levels, is.Level) {
		return false
	}
	if q.Start != 0 && is.LastSeen < q.Start || q.End != 0 && is.FirstSeen >= q.End {
		return false
	}
	if text != "" && !strings.Contains(strings.ToLower(is.Title), text) && !strings.Contains(strings.ToLower(is.Culprit), text) && is.ID != text {
		return false
	}
	return true
}

// anyOf reports whether no selection is made or the project or the
// service is selected.
func anyOf(projects []string, project string, services []string, service string) bool {
	if len(projects) == 0 && len(services) == 0 {
		return true
	}
	return slices.Contains(projects, project) || slices.Contains(services, service)
}

func cut[T any](all []T, offset, limit int) ([]T, string, error) {
	if offset >= len(all) {
		return nil, "", nil
	}
	end := min(len(all), offset+limit)
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[offset:end], next, nil
}

// GetIssue implements storage.DumpReader.
func (s *Store) GetIssue(_ context.Context, id string) (model.Issue, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	is := s.issues[id]
	if is == nil {
		return model.Issue{}, fmt.Errorf("issue %s: %w", id, storage.ErrIssueNotFound)
	}
	return cloneIssue(&is.Issue), nil
}

// matching returns the events matching q, newest first.
func (s *Store) matching(q *storage.EventQuery) []*eventMeta {
	text := strings.ToLower(q.Text)
	var found []*eventMeta
	s.mu.RLock()
	for _, m := range s.byTime {
		if matchEvent(m, q, text) {
			found = append(found, m)
		}
	}
	s.mu.RUnlock()
	sort.SliceStable(found, func(i, j int) bool {
		if found[i].Timestamp != found[j].Timestamp {
			return found[i].Timestamp > found[j].Timestamp
		}
		return found[i].ID < found[j].ID
	})
	return found
}

func matchEvent(m *eventMeta, q *storage.EventQuery, text string) bool {
	if !anyOf(q.Projects, m.Project, q.Services, m.Service) {
		return false
	}
	if len(q.Environments) > 0 && !slices.Contains(q.Environments, m.Env) {
		return false
	}
	if q.IssueID != "" && m.IssueID != q.IssueID {
		return false
	}
	if q.Start != 0 && m.Timestamp < q.Start || q.End != 0 && m.Timestamp >= q.End {
		return false
	}
	for k, v := range q.Tags {
		if !slices.Contains(m.Tags, model.Attr{Key: k, Value: v}) {
			return false
		}
	}
	return text == "" || strings.Contains(m.text, text) || m.IssueID == text || m.ID == text
}

// FindEvents implements storage.DumpReader.
func (s *Store) FindEvents(ctx context.Context, q storage.EventQuery) ([]model.Dump, string, error) {
	offset, limit, err := storage.DumpPage(q.Cursor, q.Limit)
	if err != nil {
		return nil, "", err
	}
	metas, next, _ := cut(s.matching(&q), offset, limit)
	out := make([]model.Dump, 0, len(metas))
	for _, m := range metas {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		d, err := s.load(m)
		if err != nil {
			return nil, "", err
		}
		d.Threads = nil
		out = append(out, d)
	}
	return out, next, nil
}

// GetEvent implements storage.DumpReader.
func (s *Store) GetEvent(_ context.Context, id string) (model.Dump, error) {
	s.mu.RLock()
	m := s.events[id]
	s.mu.RUnlock()
	if m == nil {
		return model.Dump{}, fmt.Errorf("event %s: %w", id, storage.ErrEventNotFound)
	}
	return s.load(m)
}

func (s *Store) load(m *eventMeta) (model.Dump, error) {
	s.mu.RLock()
	j := s.journals[m.day]
	s.mu.RUnlock()
	if j == nil {
		return model.Dump{}, fmt.Errorf("event %s: %w (deleted by retention)", m.ID, storage.ErrEventNotFound)
	}
	b, err := j.read(m.off, m.n)
	if err != nil {
		return model.Dump{}, err
	}
	var d model.Dump
	if err := json.Unmarshal(b, &d); err != nil {
		return model.Dump{}, fmt.Errorf("dump journal %s: event %s at %d: %w", j.path, m.ID, m.off, err)
	}
	return d, nil
}

// CountEvents implements storage.DumpStatsReader.
func (s *Store) CountEvents(_ context.Context, q storage.EventQuery, step int64) ([]int64, error) {
	if step <= 0 || q.End <= q.Start || q.Start <= 0 {
		return nil, fmt.Errorf("event counts need start < end and a positive step; got start %d, end %d, step %d", q.Start, q.End, step)
	}
	n := (q.End - q.Start + step - 1) / step
	if n > 10000 {
		return nil, fmt.Errorf("event counts: %d intervals; at most 10000: widen the step", n)
	}
	counts := make([]int64, n)
	for _, m := range s.matching(&q) {
		counts[(m.Timestamp-q.Start)/step]++
	}
	return counts, nil
}

// DumpProjects implements storage.DumpStatsReader.
func (s *Store) DumpProjects(context.Context) ([]storage.DumpProject, error) {
	byID := map[string]*storage.DumpProject{}
	s.mu.RLock()
	for _, is := range s.issues {
		p := byID[is.Project]
		if p == nil {
			p = &storage.DumpProject{ID: is.Project, Service: is.Service, FirstSeen: is.FirstSeen}
			byID[is.Project] = p
		}
		p.FirstSeen = min(p.FirstSeen, is.FirstSeen)
		for _, e := range is.Environments {
			p.Environments = storage.AddSorted(p.Environments, e, 1000)
		}
	}
	s.mu.RUnlock()
	out := make([]storage.DumpProject, 0, len(byID))
	for _, p := range byID {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DumpTags implements storage.DumpStatsReader.
func (s *Store) DumpTags(_ context.Context, q storage.EventQuery, maxValues int) ([]storage.DumpTag, error) {
	values := map[string]map[string]bool{}
	for _, m := range s.matching(&q) {
		for _, t := range m.Tags {
			if values[t.Key] == nil {
				values[t.Key] = map[string]bool{}
			}
			values[t.Key][t.Value] = true
		}
	}
	out := make([]storage.DumpTag, 0, len(values))
	for k, vs := range values {
		t := storage.DumpTag{Key: k, TotalValues: len(vs)}
		for v := range vs {
			t.Values = append(t.Values, v)
		}
		sort.Strings(t.Values)
		if maxValues > 0 && len(t.Values) > maxValues {
			t.Values = t.Values[:maxValues]
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
