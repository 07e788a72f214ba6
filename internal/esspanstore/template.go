package esspanstore

import (
	"context"
	"fmt"
	"time"
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
			// fields), kept in _source and not indexed, except the parent's
			// service that dependencies aggregate on. Jaeger ignores it.
			"vigil": map[string]any{"type": "object", "dynamic": false, "properties": map[string]any{
				"parentService": map[string]any{"type": "keyword"},
			}},
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
	}{{"jaeger-span", spanMapping()}, {"jaeger-service", serviceMapping()}, {"jaeger-dependencies", map[string]any{}}} {
		name := s.prefix + t.part
		err := s.c.PutJSON(ctx, "/_index_template/"+name, map[string]any{
			"index_patterns": []string{name + "-*"},
			"priority":       100 + len(s.prefix),
			"template":       map[string]any{"settings": settings, "mappings": t.mapping},
			"_meta":          map[string]any{"managed_by": "vigil"},
		})
		if err != nil {
			return fmt.Errorf("cannot install index template %s: %w", name, err)
		}
	}
	return nil
}

// Run applies retention and writes the dependency documents until ctx
// ends: every hour it deletes the daily indices whose whole day is older
// than Retention, and every DependencyInterval it writes today's (and, in
// the first hour of a day, yesterday's) calls between services to
// jaeger-dependencies-YYYY-MM-DD for jaeger-query.
func (s *Store) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.retention.Run(ctx) }()
	if s.opts.DependencyInterval > 0 {
		t := time.NewTicker(s.opts.DependencyInterval)
		defer t.Stop()
		for {
			now := time.Now().UTC()
			days := []time.Time{now}
			if before := now.Add(-time.Hour); before.YearDay() != now.YearDay() {
				days = append(days, before) // yesterday's late spans
			}
			for _, day := range days {
				if err := s.WriteDependencies(ctx, day); err != nil && ctx.Err() == nil {
					s.m.depWriteErrors.Inc()
					s.logger.Warn("cannot write the day's dependency document", "day", day.Format(dayLayout), "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return <-errc
			case <-t.C:
			}
		}
	}
	return <-errc
}

// DeleteExpired deletes the daily span and service indices whose day ended
// more than Retention before now, and returns their names.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	return s.retention.DeleteExpired(ctx, now)
}
