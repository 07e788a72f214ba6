package esprofilestore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// topHit is a top_hits aggregation of size 1.
type topHit struct {
	Hits struct {
		Hits []struct {
			Source json.RawMessage `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

// hitBuckets are the buckets of a terms aggregation, each with its top
// hit as "one".
type hitBuckets struct {
	Buckets []struct {
		Key string `json:"key"`
		One topHit `json:"one"`
	} `json:"buckets"`
}

// doc returns the document of the hit, nil if none, key naming it in
// errors.
func (h *topHit) doc(key string) (*doc, error) {
	if len(h.Hits.Hits) == 0 {
		return nil, nil
	}
	return parseDoc(key, h.Hits.Hits[0].Source)
}

// seriesOf returns the series of the profiles of q, at most
// Limits.MaxSeries of them, sorted by type then labels.
func (s *Store) seriesOf(ctx context.Context, q *query) ([]storage.ProfileSeries, error) {
	if q.none {
		return nil, nil
	}
	limit := s.opts.Limits.MaxSeries
	var aggs struct {
		S hitBuckets `json:"s"`
	}
	err := s.aggregate(ctx, q, obj{"s": obj{
		"terms": obj{"field": "series", "size": limit + 1},
		"aggs":  obj{"one": obj{"top_hits": obj{"size": 1, "_source": []string{"type", "label_set"}}}},
	}}, &aggs)
	if err != nil {
		return nil, err
	}
	if len(aggs.S.Buckets) > limit {
		return nil, fmt.Errorf("the selection has more than %d series, the limit of the Elasticsearch profile store: narrow the selector or the time range", limit)
	}
	out := make([]storage.ProfileSeries, 0, len(aggs.S.Buckets))
	for _, b := range aggs.S.Buckets {
		d, err := b.One.doc(b.Key)
		if err != nil {
			return nil, err
		}
		if d == nil {
			continue
		}
		out = append(out, storage.ProfileSeries{Type: d.Type, Labels: d.labels()})
	}
	slices.SortFunc(out, func(a, b storage.ProfileSeries) int {
		return cmp.Or(strings.Compare(a.Type, b.Type), compareLabels(a.Labels, b.Labels))
	})
	return out, nil
}

// compareLabels orders label sets as the embedded store does: pair by
// pair, name then value.
func compareLabels(a, b model.Labels) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := cmp.Or(strings.Compare(a[i].Name, b[i].Name), strings.Compare(a[i].Value, b[i].Value)); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// Series implements storage.ProfileReader.
func (s *Store) Series(ctx context.Context, sel storage.ProfileSelector) ([]storage.ProfileSeries, error) {
	q, err := s.selection(ctx, &sel)
	if err != nil {
		return nil, err
	}
	return s.seriesOf(ctx, q)
}

// LabelNames implements storage.ProfileReader.
func (s *Store) LabelNames(ctx context.Context, sel storage.ProfileSelector) ([]string, error) {
	q, err := s.selection(ctx, &sel)
	if err != nil {
		return nil, err
	}
	return s.terms(ctx, q, "label_names", "", s.opts.Limits.MaxSeries, "label names")
}

// LabelValues implements storage.ProfileReader.
func (s *Store) LabelValues(ctx context.Context, name string, sel storage.ProfileSelector) ([]string, error) {
	q, err := s.selection(ctx, &sel)
	if err != nil {
		return nil, err
	}
	pairs, err := s.terms(ctx, q, "labels", luceneLiteral(name+"=")+".*", s.opts.Limits.MaxSeries, "values of label "+name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(pairs))
	for _, p := range pairs {
		if v, ok := strings.CutPrefix(p, name+"="); ok && v != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// ProfileTypes implements storage.ProfileReader.
func (s *Store) ProfileTypes(ctx context.Context, sel storage.ProfileSelector) ([]storage.ProfileTypeInfo, error) {
	sel.Type = ""
	q, err := s.selection(ctx, &sel)
	if err != nil || q.none {
		return nil, err
	}
	limit := s.opts.Limits.MaxSeries
	var aggs struct {
		T struct {
			Buckets []struct {
				Key string     `json:"key"`
				S   hitBuckets `json:"s"`
			} `json:"buckets"`
		} `json:"t"`
	}
	err = s.aggregate(ctx, q, obj{"t": obj{
		"terms": obj{"field": "type", "size": limit + 1, "order": obj{"_key": "asc"}},
		"aggs": obj{"s": obj{
			"terms": obj{"field": "signature", "size": limit + 1, "order": obj{"_key": "asc"}},
			"aggs":  obj{"one": obj{"top_hits": obj{"size": 1, "_source": []string{"sample_types", "default_sample_type", "period_type"}}}},
		}},
	}}, &aggs)
	if err != nil {
		return nil, err
	}
	var out []storage.ProfileTypeInfo
	for _, t := range aggs.T.Buckets {
		for _, sg := range t.S.Buckets {
			d, err := sg.One.doc(t.Key)
			if err != nil {
				return nil, err
			}
			if d == nil {
				continue
			}
			out = append(out, storage.ProfileTypeInfo{Type: t.Key, SampleTypes: d.SampleTypes, DefaultSampleType: d.DefaultSampleType, PeriodType: d.PeriodType})
		}
	}
	if len(out) > limit {
		return nil, fmt.Errorf("the selection has more than %d profile types, the limit of the Elasticsearch profile store", limit)
	}
	return out, nil
}

// Stats implements storage.ProfileReader: the oldest and the newest
// profile, each found by a search sorted by time (exact, where a min or
// max aggregation would round nanoseconds to a double).
func (s *Store) Stats(ctx context.Context) (storage.ProfileStats, error) {
	var st storage.ProfileStats
	for _, order := range []string{"asc", "desc"} {
		r, err := s.search(ctx, obj{"size": 1, "_source": []string{"time"}, "sort": []any{obj{"time": order}}, "track_total_hits": false})
		if err != nil {
			return st, err
		}
		if len(r.Hits.Hits) == 0 {
			return storage.ProfileStats{}, nil
		}
		d, err := parseDoc(r.Hits.Hits[0].ID, r.Hits.Hits[0].Source)
		if err != nil {
			return st, err
		}
		st.DataIngested = true
		if order == "asc" {
			st.Oldest = d.TimeNanos
		} else {
			st.Newest = d.TimeNanos
		}
	}
	return st, nil
}

// pageSize is the documents of one search of Profiles and Totals.
const pageSize = 1000

// each calls fn for each profile document of q, oldest first (ties by
// id), with the source fields given, in pages of size documents, at most
// max of them: one more is an error naming max and what.
func (s *Store) each(ctx context.Context, q *query, fields []string, size, max int, what string, fn func(d *doc) error) error {
	if q.none {
		return nil
	}
	var after []json.RawMessage
	n := 0
	for {
		body := obj{"query": q.dsl(), "size": size, "sort": []any{obj{"time": "asc"}, obj{"id": "asc"}}, "track_total_hits": false}
		if fields != nil {
			body["_source"] = fields
		}
		if after != nil {
			body["search_after"] = after
		}
		r, err := s.search(ctx, body)
		if err != nil {
			return err
		}
		for _, h := range r.Hits.Hits {
			if n++; n > max {
				return fmt.Errorf("the selection has more than %d profiles, the limit of the Elasticsearch profile store for %s: narrow the selector or the time range", max, what)
			}
			d, err := parseDoc(h.ID, h.Source)
			if err != nil {
				return err
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(r.Hits.Hits) < size {
			return nil
		}
		after = r.Hits.Hits[len(r.Hits.Hits)-1].Sort
	}
}

// errEnough ends an iteration early.
var errEnough = fmt.Errorf("enough profiles")

// Profiles implements storage.ProfileReader.
func (s *Store) Profiles(ctx context.Context, sel storage.ProfileSelector, limit int) ([]storage.ProfileMeta, error) {
	q, err := s.selection(ctx, &sel)
	if err != nil {
		return nil, err
	}
	max := s.opts.Limits.MaxProfiles
	if limit > 0 {
		max = limit + 1
	}
	var out []storage.ProfileMeta
	err = s.each(ctx, q, metaFields, min(pageSize, max), max, "a listing", func(d *doc) error {
		if limit > 0 && len(out) == limit {
			return errEnough
		}
		m, err := d.meta()
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil && err != errEnough {
		return nil, err
	}
	return out, nil
}

// Profile implements storage.ProfileReader.
func (s *Store) Profile(ctx context.Context, id model.RecordID) (*profile.Profile, storage.ProfileMeta, error) {
	r, err := s.search(ctx, obj{"query": obj{"ids": obj{"values": []string{id.String()}}}, "size": 1})
	if err != nil {
		return nil, storage.ProfileMeta{}, err
	}
	if len(r.Hits.Hits) == 0 {
		return nil, storage.ProfileMeta{}, fmt.Errorf("profile %s: %w", id, storage.ErrProfileNotFound)
	}
	d, err := parseDoc(id.String(), r.Hits.Hits[0].Source)
	if err != nil {
		return nil, storage.ProfileMeta{}, err
	}
	m, err := d.meta()
	if err != nil {
		return nil, storage.ProfileMeta{}, err
	}
	pp, err := s.decode(d)
	if err != nil {
		return nil, storage.ProfileMeta{}, err
	}
	return pp, m, nil
}
