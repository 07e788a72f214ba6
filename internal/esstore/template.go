package esstore

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// templateVersion changes whenever the mapping or settings change; it is
// stored in the template's version field so operators can see which Vigil
// mapping an index was created with.
const templateVersion = 2

// labelsIgnoreAbove: attribute values longer than this many characters are
// kept in _source but not indexed, so one huge attribute cannot exceed
// Lucene's 32 KiB term limit and get its whole record rejected.
const labelsIgnoreAbove = 4096

// streamKeyMax: a vigil.stream value longer than this is not kept (Lucene
// refuses terms over 32 KiB).
const streamKeyMax = 8192

// mapping is the mapping of every daily index. dynamic:false at the top: a
// field the mapping does not name is kept in _source but never creates a
// mapping (free-form attributes live in the flattened field labels, one
// mapped field whatever their keys), and a document written by a newer Vigil
// with an extra field is still accepted by an index created by an older one.
func mapping() map[string]any {
	kw := keyword()
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date_nanos"},
			"event": object(map[string]any{
				"created": map[string]any{"type": "date_nanos"},
				"id":      kw,
			}),
			"message": map[string]any{
				// standard analyzer: what Kibana's KQL and people expect
				"type": "text", "norms": false,
				"fields": map[string]any{
					// whitespace-split, case-preserving terms for Vigil's
					// substring line filters (wildcard and term queries);
					// no positions or frequencies are needed for that
					wsField: map[string]any{"type": "text", "analyzer": "whitespace", "index_options": "docs", "norms": false},
				},
			},
			"log": object(map[string]any{
				"level": kw,
				"file":  object(map[string]any{"path": kw}),
			}),
			"service": object(map[string]any{"name": kw}),
			"host":    object(map[string]any{"name": kw}),
			"trace":   object(map[string]any{"id": kw}),
			"span":    object(map[string]any{"id": kw}),
			"vigil": object(map[string]any{
				"grade":       map[string]any{"type": "byte"},
				"env":         kw,
				"source":      kw,
				"truncated":   map[string]any{"type": "boolean"},
				"long_tokens": map[string]any{"type": "boolean"},
				// the message's length in bytes, summed by index/volume;
				// aggregated from doc values, never searched
				"message_bytes": map[string]any{"type": "integer", "index": false},
				// the stream labels as one value, aggregated by
				// index/volume; a longer key is left out, and its
				// documents are counted by reading them
				"stream": map[string]any{"type": "keyword", "index": false, "ignore_above": streamKeyMax},
			}),
			"labels": map[string]any{"type": "flattened", "ignore_above": labelsIgnoreAbove},
		},
	}
}

func keyword() map[string]any { return map[string]any{"type": "keyword"} }

func object(props map[string]any) map[string]any { return map[string]any{"properties": props} }

// templateBody is the composable index template for the daily indices.
func (s *Store) templateBody() map[string]any {
	settings := map[string]any{
		"number_of_shards":   s.opts.Shards,
		"number_of_replicas": s.opts.Replicas,
		// logs are written once and read seldom: trade merge CPU for disk
		"codec": "best_compression",
	}
	if s.opts.RefreshInterval > 0 {
		settings["refresh_interval"] = strconv.FormatInt(s.opts.RefreshInterval.Milliseconds(), 10) + "ms"
	}
	if s.ilm && s.retention.Period() > 0 {
		settings["index.lifecycle.name"] = s.name
	}
	return map[string]any{
		"index_patterns": []string{s.opts.IndexPrefix + "*"},
		// A longer prefix is more specific and wins; two different
		// prefixes of equal length cannot overlap, so priorities never tie
		// on overlapping patterns (which Elasticsearch refuses).
		"priority": 100 + len(s.opts.IndexPrefix),
		"version":  templateVersion,
		"template": map[string]any{"settings": settings, "mappings": mapping()},
		"_meta":    map[string]any{"managed_by": "vigil", "description": "Vigil log records, one index per UTC day"},
	}
}

// installTemplate puts the index template. PUT replaces a template of the
// same name, so installing it again is a no-op when nothing changed.
func (s *Store) installTemplate(ctx context.Context) error {
	if s.ilm && s.retention.Period() > 0 {
		if err := s.putILMPolicy(ctx); err != nil {
			return err
		}
	}
	if err := s.c.PutJSON(ctx, "/_index_template/"+s.name, s.templateBody()); err != nil {
		return fmt.Errorf("cannot install index template %s: %w", s.name, err)
	}
	return nil
}

// detectILM asks for the ILM policies: a cluster with ILM answers 200; one
// without (such as the integ-test distribution) answers 404/405/400.
func (s *Store) detectILM(ctx context.Context) error {
	status, _, err := s.c.Do(ctx, http.MethodGet, "/_ilm/policy", nil, "")
	if err != nil {
		return fmt.Errorf("cannot detect ILM: %w", err)
	}
	s.ilm = status == http.StatusOK
	return nil
}

// putILMPolicy installs a policy deleting an index Retention after its
// creation. Daily indices are created by the first record of their day, so
// for live data creation and day start coincide; backfilled old days live
// Retention past their creation.
func (s *Store) putILMPolicy(ctx context.Context) error {
	policy := map[string]any{"policy": map[string]any{
		"_meta": map[string]any{"managed_by": "vigil"},
		"phases": map[string]any{
			"hot":    map[string]any{"min_age": "0ms", "actions": map[string]any{}},
			"delete": map[string]any{"min_age": durationSetting(s.retention.Period() + 24*time.Hour), "actions": map[string]any{"delete": map[string]any{}}},
		},
	}}
	if err := s.c.PutJSON(ctx, "/_ilm/policy/"+s.name, policy); err != nil {
		return fmt.Errorf("cannot install ILM policy %s: %w", s.name, err)
	}
	return nil
}

func durationSetting(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
