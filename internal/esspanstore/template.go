package esspanstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// Field names and types follow Jaeger's ES 7/8 templates
// (jaeger-span-8.json, jaeger-service-8.json), keywords capped at 256
// characters as there.
func kw() map[string]any { return map[string]any{"type": "keyword", "ignore_above": 256} }

func kvNested() map[string]any {
	return map[string]any{"type": "nested", "dynamic": false, "properties": map[string]any{
		"key": kw(), "value": kw(), "type": kw(),
	}}
}

// tagsAsFields are Jaeger's dynamic templates for tags stored as object
// fields (tag.*, process.tag.*); Jaeger puts them in both templates.
func tagsAsFields() []any {
	tagsMap := func(name, path string) map[string]any {
		return map[string]any{name: map[string]any{"mapping": kw(), "path_match": path}}
	}
	return []any{tagsMap("span_tags_map", "tag.*"), tagsMap("process_tags_map", "process.tag.*")}
}

func spanMapping() map[string]any {
	return map[string]any{
		"dynamic_templates": tagsAsFields(),
		"properties": map[string]any{
			"traceID":         kw(),
			"spanID":          kw(),
			"parentSpanID":    kw(),
			"operationName":   kw(),
			"startTime":       map[string]any{"type": "long"},
			"startTimeMillis": map[string]any{"type": "date", "format": "epoch_millis"},
			"duration":        map[string]any{"type": "long"},
			"flags":           map[string]any{"type": "integer"},
			"logs": map[string]any{"type": "nested", "dynamic": false, "properties": map[string]any{
				"timestamp": map[string]any{"type": "long"},
				"fields":    kvNested(),
			}},
			"process": map[string]any{"properties": map[string]any{
				"serviceName": kw(),
				"tag":         map[string]any{"type": "object"},
				"tags":        kvNested(),
			}},
			"references": map[string]any{"type": "nested", "dynamic": false, "properties": map[string]any{
				"refType": kw(), "traceID": kw(), "spanID": kw(),
			}},
			"tag":  map[string]any{"type": "object"},
			"tags": kvNested(),
			// Vigil's lossless extras (ns times, kind, status, resource
			// fields); kept in _source, never indexed. Jaeger ignores it.
			"vigil": map[string]any{"type": "object", "enabled": false},
		},
	}
}

// serviceMapping is Jaeger's, dynamic templates included, so that either
// template maps a service index the same way.
func serviceMapping() map[string]any {
	return map[string]any{
		"dynamic_templates": tagsAsFields(),
		"properties":        map[string]any{"serviceName": kw(), "operationName": kw()},
	}
}

// installTemplates puts the span and service index templates, named as
// Jaeger names them (<prefix>-jaeger-span, <prefix>-jaeger-service), so
// Vigil and a Jaeger collector on the same cluster replace each other's
// template with an equivalent one instead of overlapping. PUT is
// idempotent.
func (s *Store) installTemplates(ctx context.Context) error {
	settings := map[string]any{
		"index.number_of_shards":            s.opts.Shards,
		"index.number_of_replicas":          s.opts.Replicas,
		"index.mapping.nested_fields.limit": 50,
		"index.requests.cache.enable":       true,
	}
	for _, t := range []struct {
		part    string
		mapping map[string]any
	}{{"jaeger-span", spanMapping()}, {"jaeger-service", serviceMapping()}} {
		name := s.prefix + t.part
		body, err := json.Marshal(map[string]any{
			"index_patterns": []string{name + "-*"},
			"priority":       100 + len(s.prefix),
			"template":       map[string]any{"settings": settings, "mappings": t.mapping},
			"_meta":          map[string]any{"managed_by": "vigil"},
		})
		if err != nil {
			return err
		}
		status, resp, err := s.do(ctx, http.MethodPut, "/_index_template/"+name, body, "")
		if err != nil {
			return fmt.Errorf("cannot install index template %s: %w", name, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("cannot install index template %s: status %d: %s", name, status, snippet(resp))
		}
	}
	return nil
}

// Run applies retention until ctx ends: every hour it deletes the daily
// span and service indices whose whole day is older than Retention.
func (s *Store) Run(ctx context.Context) error {
	if s.opts.Retention <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if deleted, err := s.DeleteExpired(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.logger.Warn("cannot apply elasticsearch span retention", "err", err)
		} else if len(deleted) > 0 {
			s.logger.Info("deleted expired span indices", "indices", deleted, "retention", s.opts.Retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DeleteExpired deletes the daily span and service indices whose day ended
// more than Retention before now, and returns their names.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	if s.opts.Retention <= 0 {
		return nil, nil
	}
	pattern := s.prefix + "jaeger-*"
	status, body, err := s.do(ctx, http.MethodGet, "/_cat/indices/"+pattern+"?h=index&format=json&expand_wildcards=open,closed", nil, "")
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("cannot list indices %s: status %d: %v %s", pattern, status, err, snippet(body))
	}
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("cannot parse index list: %w", err)
	}
	var expired []string
	for _, e := range v.GetArray() {
		name := string(e.GetStringBytes("index"))
		if day, ok := s.indexDay(name); ok && !day.Add(24*time.Hour+s.opts.Retention).After(now) {
			expired = append(expired, name)
		}
	}
	slices.Sort(expired)
	for i := 0; i < len(expired); i += 50 {
		names := strings.Join(expired[i:min(i+50, len(expired))], ",")
		status, body, err := s.do(ctx, http.MethodDelete, "/"+names+"?ignore_unavailable=true", nil, "")
		if err != nil || status != http.StatusOK {
			return expired[:i], fmt.Errorf("cannot delete expired indices %s: status %d: %v %s", names, status, err, snippet(body))
		}
		s.m.deletedIdx.Add(float64(min(i+50, len(expired)) - i))
	}
	return expired, nil
}

// indexDay parses the day of <prefix>jaeger-span-YYYY-MM-DD or
// <prefix>jaeger-service-YYYY-MM-DD.
func (s *Store) indexDay(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, s.prefix)
	if !ok {
		return time.Time{}, false
	}
	for _, part := range []string{spanIndexPart, serviceIdxPart} {
		if d, ok := strings.CutPrefix(rest, part); ok && len(d) == len(dayLayout) {
			t, err := time.Parse(dayLayout, d)
			return t, err == nil
		}
	}
	return time.Time{}, false
}
