package esdumpstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// searchResponse is the part of a search answer the readers use.
type searchResponse struct {
	Hits struct {
		Hits []struct {
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations json.RawMessage `json:"aggregations"`
}

// search runs one search over index (a name or pattern).
func (s *Store) search(ctx context.Context, index string, body obj) (*searchResponse, error) {
	var r searchResponse
	if err := s.c.Search(ctx, index, body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// page parses a cursor and bounds a limit by the result window.
func page(cursor string, limit int) (int, int, error) {
	offset, limit, err := storage.DumpPage(cursor, limit)
	if err == nil && offset+limit > maxWindow {
		err = fmt.Errorf("cursor %q: Elasticsearch pages through the first %d results only: narrow the query", cursor, maxWindow)
	}
	return offset, limit, err
}

func terms(field string, vs []string) obj { return obj{"terms": obj{field: vs}} }

func rangeQ(field string, gte, lt int64) obj {
	r := obj{}
	if gte != 0 {
		r["gte"] = gte
	}
	if lt != 0 {
		r["lt"] = lt
	}
	return obj{"range": obj{field: r}}
}

func contains(field, text string) obj {
	return obj{"wildcard": obj{field: obj{"value": "*" + escapeWildcard(text) + "*", "case_insensitive": true}}}
}

func escapeWildcard(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`).Replace(s)
}

// projectsOrServices matches documents of any of the projects or services.
func projectsOrServices(projects, services []string) []any {
	if len(projects) == 0 && len(services) == 0 {
		return nil
	}
	var should []any
	if len(projects) > 0 {
		should = append(should, terms("project", projects))
	}
	if len(services) > 0 {
		should = append(should, terms("service", services))
	}
	return []any{obj{"bool": obj{"should": should, "minimum_should_match": 1}}}
}

func issueQuery(q *storage.IssueQuery) obj {
	filter := projectsOrServices(q.Projects, q.Services)
	if len(q.Environments) > 0 {
		filter = append(filter, terms("environments", q.Environments))
	}
	if q.Grade != 0 {
		filter = append(filter, obj{"term": obj{"grade": q.Grade}})
	}
	if len(q.Statuses) > 0 {
		var st []string
		for _, x := range q.Statuses {
			st = append(st, string(x))
		}
		filter = append(filter, terms("status", st))
	}
	if len(q.Levels) > 0 {
		filter = append(filter, terms("level", q.Levels))
	}
	if q.Start != 0 {
		filter = append(filter, rangeQ("last_seen", q.Start, 0))
	}
	if q.End != 0 {
		filter = append(filter, rangeQ("first_seen", 0, q.End))
	}
	if q.Text != "" {
		filter = append(filter, obj{"bool": obj{"should": []any{contains("title", q.Text), contains("culprit", q.Text),
			obj{"term": obj{"id": q.Text}}}, "minimum_should_match": 1}})
	}
	return obj{"bool": obj{"filter": filter}}
}

// FindIssues implements storage.DumpReader; the cursor is an offset.
func (s *Store) FindIssues(ctx context.Context, q storage.IssueQuery) ([]model.Issue, string, error) {
	offset, limit, err := page(q.Cursor, q.Limit)
	if err != nil {
		return nil, "", err
	}
	sortField := map[storage.IssueSort]string{"": "last_seen", storage.SortLastSeen: "last_seen",
		storage.SortFirstSeen: "first_seen", storage.SortCount: "count"}[q.Sort]
	if sortField == "" {
		return nil, "", fmt.Errorf("issue sort %q: want last_seen, first_seen or count", q.Sort)
	}
	r, err := s.search(ctx, s.issueIndex(), obj{"query": issueQuery(&q), "from": offset, "size": limit + 1,
		"sort": []any{obj{sortField: "desc"}, obj{"id": "asc"}}, "_source": issueFields, "track_total_hits": false})
	if err != nil {
		return nil, "", err
	}
	out := make([]model.Issue, 0, len(r.Hits.Hits))
	for _, h := range r.Hits.Hits {
		var is model.Issue
		if err := json.Unmarshal(h.Source, &is); err != nil {
			return nil, "", fmt.Errorf("cannot parse issue %s: %w", h.ID, err)
		}
		out = append(out, is)
	}
	next := ""
	if len(out) > limit {
		out, next = out[:limit], strconv.Itoa(offset+limit)
	}
	return out, next, nil
}

// GetIssue implements storage.DumpReader (a real-time get).
func (s *Store) GetIssue(ctx context.Context, id string) (model.Issue, error) {
	docs, err := s.mget(ctx, [][2]string{{s.issueIndex(), id}}, issueFields)
	if err != nil {
		return model.Issue{}, err
	}
	if docs[0] == nil {
		return model.Issue{}, fmt.Errorf("issue %s: %w", id, storage.ErrIssueNotFound)
	}
	var is model.Issue
	if err := json.Unmarshal(docs[0], &is); err != nil {
		return model.Issue{}, fmt.Errorf("cannot parse issue %s: %w", id, err)
	}
	return is, nil
}

func eventQuery(q *storage.EventQuery) obj {
	filter := projectsOrServices(q.Projects, q.Services)
	if len(q.Environments) > 0 {
		filter = append(filter, terms("environment", q.Environments))
	}
	if q.IssueID != "" {
		filter = append(filter, obj{"term": obj{"issue_id": q.IssueID}})
	}
	if q.Start != 0 || q.End != 0 {
		filter = append(filter, rangeQ("timestamp", q.Start, q.End))
	}
	keys := make([]string, 0, len(q.Tags))
	for k := range q.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		filter = append(filter, obj{"term": obj{"tags": k + "=" + q.Tags[k]}})
	}
	if q.Text != "" {
		t := strings.ToLower(q.Text)
		filter = append(filter, obj{"bool": obj{"should": []any{contains("text", t), obj{"term": obj{"event_id": q.Text}},
			obj{"term": obj{"issue_id": q.Text}}}, "minimum_should_match": 1}})
	}
	return obj{"bool": obj{"filter": filter}}
}

// FindEvents implements storage.DumpReader; the cursor is an offset.
func (s *Store) FindEvents(ctx context.Context, q storage.EventQuery) ([]model.Dump, string, error) {
	offset, limit, err := page(q.Cursor, q.Limit)
	if err != nil {
		return nil, "", err
	}
	r, err := s.search(ctx, s.eventPattern(), obj{"query": eventQuery(&q), "from": offset, "size": limit + 1,
		"sort": []any{obj{"timestamp": "desc"}, obj{"event_id": "asc"}}, "_source": obj{"includes": []string{"dump"}, "excludes": []string{"dump.threads"}},
		"track_total_hits": false})
	if err != nil {
		return nil, "", err
	}
	out := make([]model.Dump, 0, len(r.Hits.Hits))
	for _, h := range r.Hits.Hits {
		d, err := dumpOf(h.ID, h.Source)
		if err != nil {
			return nil, "", err
		}
		out = append(out, d)
	}
	next := ""
	if len(out) > limit {
		out, next = out[:limit], strconv.Itoa(offset+limit)
	}
	return out, next, nil
}

func dumpOf(id string, src json.RawMessage) (model.Dump, error) {
	var doc struct {
		Dump model.Dump `json:"dump"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		return model.Dump{}, fmt.Errorf("cannot parse event %s: %w", id, err)
	}
	return doc.Dump, nil
}

// GetEvent implements storage.DumpReader.
func (s *Store) GetEvent(ctx context.Context, id string) (model.Dump, error) {
	r, err := s.search(ctx, s.eventPattern(), obj{"query": obj{"ids": obj{"values": []string{id}}}, "size": 1, "_source": []string{"dump"}})
	if err != nil {
		return model.Dump{}, err
	}
	if len(r.Hits.Hits) == 0 {
		return model.Dump{}, fmt.Errorf("event %s: %w", id, storage.ErrEventNotFound)
	}
	return dumpOf(id, r.Hits.Hits[0].Source)
}

// CountEvents implements storage.DumpStatsReader with a date histogram;
// the step must be whole milliseconds.
func (s *Store) CountEvents(ctx context.Context, q storage.EventQuery, step int64) ([]int64, error) {
	if step <= 0 || q.End <= q.Start || q.Start <= 0 || step%1e6 != 0 {
		return nil, fmt.Errorf("event counts need start < end and a step of whole milliseconds; got start %d, end %d, step %d", q.Start, q.End, step)
	}
	n := (q.End - q.Start + step - 1) / step
	if n > maxWindow {
		return nil, fmt.Errorf("event counts: %d intervals; at most %d: widen the step", n, maxWindow)
	}
	startMs, stepMs := q.Start/1e6, step/1e6
	r, err := s.search(ctx, s.eventPattern(), obj{"query": eventQuery(&q), "size": 0, "aggs": obj{"h": obj{"date_histogram": obj{
		"field": "@timestamp", "fixed_interval": fmt.Sprintf("%dms", stepMs), "offset": fmt.Sprintf("%dms", startMs%stepMs),
		"min_doc_count": 1,
	}}}})
	if err != nil {
		return nil, err
	}
	var aggs struct {
		H struct {
			Buckets []struct {
				Key   int64 `json:"key"`
				Count int64 `json:"doc_count"`
			} `json:"buckets"`
		} `json:"h"`
	}
	if err := json.Unmarshal(r.Aggregations, &aggs); err != nil {
		return nil, fmt.Errorf("cannot parse event counts: %w", err)
	}
	counts := make([]int64, n)
	for _, b := range aggs.H.Buckets {
		if i := (b.Key - startMs) / stepMs; i >= 0 && i < n {
			counts[i] += b.Count
		}
	}
	return counts, nil
}

type termsAgg struct {
	Buckets []struct {
		Key   any   `json:"key"`
		Count int64 `json:"doc_count"`
	} `json:"buckets"`
}

// DumpProjects implements storage.DumpStatsReader.
func (s *Store) DumpProjects(ctx context.Context) ([]storage.DumpProject, error) {
	r, err := s.search(ctx, s.issueIndex(), obj{"size": 0, "aggs": obj{"p": obj{
		"terms": obj{"field": "project", "size": 1000, "order": obj{"_key": "asc"}},
		"aggs": obj{
			"service": obj{"terms": obj{"field": "service", "size": 1}},
			"envs":    obj{"terms": obj{"field": "environments", "size": 1000, "order": obj{"_key": "asc"}}},
			"first":   obj{"min": obj{"field": "first_seen"}},
		},
	}}})
	if err != nil {
		return nil, err
	}
	var aggs struct {
		P struct {
			Buckets []struct {
				Key     string   `json:"key"`
				Service termsAgg `json:"service"`
				Envs    termsAgg `json:"envs"`
				First   struct {
					Value float64 `json:"value"`
				} `json:"first"`
			} `json:"buckets"`
		} `json:"p"`
	}
	if err := json.Unmarshal(r.Aggregations, &aggs); err != nil {
		return nil, fmt.Errorf("cannot parse projects: %w", err)
	}
	out := make([]storage.DumpProject, 0, len(aggs.P.Buckets))
	for _, b := range aggs.P.Buckets {
		p := storage.DumpProject{ID: b.Key, FirstSeen: int64(b.First.Value)}
		if len(b.Service.Buckets) > 0 {
			p.Service = fmt.Sprint(b.Service.Buckets[0].Key)
		}
		for _, e := range b.Envs.Buckets {
			p.Environments = append(p.Environments, fmt.Sprint(e.Key))
		}
		out = append(out, p)
	}
	return out, nil
}

// maxTagPairs bounds the key=value pairs DumpTags aggregates.
const maxTagPairs = 10000

// DumpTags implements storage.DumpStatsReader.
func (s *Store) DumpTags(ctx context.Context, q storage.EventQuery, maxValues int) ([]storage.DumpTag, error) {
	r, err := s.search(ctx, s.eventPattern(), obj{"query": eventQuery(&q), "size": 0,
		"aggs": obj{"t": obj{"terms": obj{"field": "tags", "size": maxTagPairs}}}})
	if err != nil {
		return nil, err
	}
	var aggs struct {
		T termsAgg `json:"t"`
	}
	if err := json.Unmarshal(r.Aggregations, &aggs); err != nil {
		return nil, fmt.Errorf("cannot parse tags: %w", err)
	}
	values := map[string][]string{}
	for _, b := range aggs.T.Buckets {
		k, v, _ := strings.Cut(fmt.Sprint(b.Key), "=")
		values[k] = append(values[k], v)
	}
	out := make([]storage.DumpTag, 0, len(values))
	for k, vs := range values {
		sort.Strings(vs)
		t := storage.DumpTag{Key: k, TotalValues: len(vs), Values: vs}
		if maxValues > 0 && len(vs) > maxValues {
			t.Values = vs[:maxValues]
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// SetIssueStatus implements storage.IssueStatusSetter with a
// compare-and-set of the issue document, as WriteDumps changes it.
func (s *Store) SetIssueStatus(ctx context.Context, id string, status model.IssueStatus, at int64) (model.Issue, error) {
	switch status {
	case model.IssueResolved, model.IssueUnresolved, model.IssueIgnored:
	default:
		return model.Issue{}, fmt.Errorf("issue status %q: want resolved, unresolved or ignored", status)
	}
	for round := 1; round <= maxFoldRounds; round++ {
		cur, err := s.readIssues(ctx, []string{id})
		if err != nil {
			return model.Issue{}, err
		}
		v := cur[id]
		if v.doc == nil {
			return model.Issue{}, fmt.Errorf("issue %s: %w", id, storage.ErrIssueNotFound)
		}
		v.doc.Status = status
		if status == model.IssueResolved {
			v.doc.ResolvedAt = at
		}
		body, err := json.Marshal(v.doc)
		if err != nil {
			return model.Issue{}, err
		}
		path := fmt.Sprintf("/%s/_doc/%s?if_seq_no=%d&if_primary_term=%d", s.issueIndex(), url.PathEscape(id), v.seqNo, v.term)
		st, resp, err := s.c.Do(ctx, http.MethodPut, path, body, "")
		switch {
		case err != nil:
			return model.Issue{}, fmt.Errorf("cannot update issue %s: %w", id, err)
		case st == http.StatusOK || st == http.StatusCreated:
			return v.doc.Issue, nil
		case st == http.StatusConflict:
			s.m.conflicts.Inc()
			continue
		}
		return model.Issue{}, fmt.Errorf("cannot update issue %s: status %d: %s", id, st, es.ErrorReason(resp))
	}
	return model.Issue{}, fmt.Errorf("cannot update issue %s: still changed by other writers after %d attempts", id, maxFoldRounds)
}
