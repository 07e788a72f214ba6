package esdumpstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigilhq/vigil/internal/es"
)

type obj = map[string]any

func kw() obj { return obj{"type": "keyword", "ignore_above": 1024} }

// eventMapping maps an event document (eventDoc): the dump as stored in
// "dump", not indexed, and the fields the readers filter, sort and
// aggregate on.
func eventMapping() obj {
	return obj{
		"dynamic": "strict",
		"properties": obj{
			"event_id": kw(), "issue_id": kw(), "project": kw(), "service": kw(), "environment": kw(),
			"level": kw(), "release": kw(),
			"timestamp":  obj{"type": "long"},
			"@timestamp": obj{"type": "date", "format": "epoch_millis"},
			"tags":       kw(),                                         // "key=value"
			"text":       obj{"type": "keyword", "ignore_above": 8192}, // searched with wildcard queries
			"folded":     obj{"type": "boolean"},
			"dump":       obj{"type": "object", "enabled": false},
			"title":      obj{"type": "keyword", "index": false, "doc_values": false},
			"culprit":    obj{"type": "keyword", "index": false, "doc_values": false},
		},
	}
}

// issueMapping maps an issue document: model.Issue's fields, and the
// event ids last folded in (stored, not indexed).
func issueMapping() obj {
	long := obj{"type": "long"}
	return obj{
		"dynamic": "strict",
		"properties": obj{
			"id": kw(), "project": kw(), "service": kw(), "grade": obj{"type": "integer"},
			"title": kw(), "culprit": kw(), // searched with wildcard queries
			"level": kw(), "status": kw(),
			"first_seen": long, "last_seen": long, "count": long,
			"releases": kw(), "environments": kw(), "hosts": kw(),
			"resolved_at": long, "regressed_at": long,
			"last_event_id": kw(), "first_event_id": kw(), "regression_event_id": kw(),
			"folded_ids": obj{"type": "keyword", "index": false, "doc_values": false},
		},
	}
}

// createIssueIndex creates the issue index unless it exists.
func (s *Store) createIssueIndex(ctx context.Context, settings obj) error {
	body, _ := json.Marshal(obj{"settings": settings, "mappings": issueMapping()})
	status, resp, err := s.c.Do(ctx, http.MethodPut, "/"+s.issueIndex(), body, "")
	if err != nil {
		return fmt.Errorf("cannot create index %s: %w", s.issueIndex(), err)
	}
	if status != http.StatusOK && !(status == http.StatusBadRequest && strings.Contains(string(resp), "resource_already_exists_exception")) {
		return fmt.Errorf("cannot create index %s: status %d: %s", s.issueIndex(), status, es.ErrorReason(resp))
	}
	return nil
}
