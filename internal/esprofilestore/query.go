package esprofilestore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// query is a selection as an Elasticsearch bool query; none means the
// selection is known to hold no profile.
type query struct {
	filter, mustNot []any
	none            bool
}

func (q *query) dsl() obj {
	b := obj{}
	if len(q.filter) > 0 {
		b["filter"] = q.filter
	}
	if len(q.mustNot) > 0 {
		b["must_not"] = q.mustNot
	}
	return obj{"bool": b}
}

func term(field string, v any) obj { return obj{"term": obj{field: v}} }

// selection translates sel into a query. Equality matchers become term
// queries on the "name=value" pairs and the label names (an absent label
// matches as "", as in PromQL); regular expressions, whose syntax
// Elasticsearch does not share, are matched here against the series the
// rest of the selection leaves, at most Limits.MaxSeries of them, which
// then select the profiles by series id.
func (s *Store) selection(ctx context.Context, sel *storage.ProfileSelector) (*query, error) {
	q := &query{}
	if sel.Type != "" {
		q.filter = append(q.filter, term("type", sel.Type))
	}
	if sel.Start != 0 || sel.End != 0 {
		r := obj{}
		if sel.Start != 0 {
			r["gte"] = sel.Start
		}
		if sel.End != 0 {
			r["lt"] = sel.End
		}
		q.filter = append(q.filter, obj{"range": obj{"time": r}})
	}
	var regexps []*model.LabelMatcher
	for _, m := range sel.Matchers {
		switch {
		case m.Op == model.MatchEqual && m.Value != "":
			q.filter = append(q.filter, term("labels", m.Name+"="+m.Value))
		case m.Op == model.MatchEqual:
			q.mustNot = append(q.mustNot, term("label_names", m.Name))
		case m.Op == model.MatchNotEqual && m.Value != "":
			q.mustNot = append(q.mustNot, term("labels", m.Name+"="+m.Value))
		case m.Op == model.MatchNotEqual:
			q.filter = append(q.filter, term("label_names", m.Name))
		default:
			regexps = append(regexps, m)
		}
	}
	if len(regexps) == 0 {
		return q, nil
	}
	series, err := s.seriesOf(ctx, q)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, sr := range series {
		if model.MatchLabels(regexps, sr.Labels) {
			ids = append(ids, seriesID(sr.Type, sr.Labels))
		}
	}
	if len(ids) == 0 {
		return &query{none: true}, nil
	}
	q.filter = append(q.filter, obj{"terms": obj{"series": ids}})
	return q, nil
}

// searchResponse is the part of a search answer the readers use.
type searchResponse struct {
	Hits struct {
		Hits []struct {
			ID     string            `json:"_id"`
			Source json.RawMessage   `json:"_source"`
			Sort   []json.RawMessage `json:"sort"` // kept raw: a long in a float64 would lose nanoseconds
		} `json:"hits"`
	} `json:"hits"`
	Aggregations json.RawMessage `json:"aggregations"`
}

func (s *Store) search(ctx context.Context, body obj) (*searchResponse, error) {
	var r searchResponse
	if err := s.Client.Search(ctx, s.pattern(), body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// aggregate runs a search of aggregations only and decodes them into out.
func (s *Store) aggregate(ctx context.Context, q *query, aggs obj, out any) error {
	r, err := s.search(ctx, obj{"query": q.dsl(), "size": 0, "track_total_hits": false, "aggs": aggs})
	if err != nil {
		return err
	}
	if len(r.Aggregations) == 0 {
		return nil // no index yet: no buckets
	}
	if err := json.Unmarshal(r.Aggregations, out); err != nil {
		return fmt.Errorf("cannot parse the aggregations of a profile search: %w", err)
	}
	return nil
}

type bucket struct {
	Key   string `json:"key"`
	Count int64  `json:"doc_count"`
}

// terms returns the values of a keyword field in the selection, sorted,
// at most limit of them (an error names the limit); include, when not
// empty, keeps the values matching that Lucene regular expression.
func (s *Store) terms(ctx context.Context, q *query, field, include string, limit int, what string) ([]string, error) {
	if q.none {
		return nil, nil
	}
	t := obj{"field": field, "size": limit + 1, "order": obj{"_key": "asc"}}
	if include != "" {
		t["include"] = include
	}
	var aggs struct {
		T struct {
			Buckets []bucket `json:"buckets"`
		} `json:"t"`
	}
	if err := s.aggregate(ctx, q, obj{"t": obj{"terms": t}}, &aggs); err != nil {
		return nil, err
	}
	if len(aggs.T.Buckets) > limit {
		return nil, fmt.Errorf("the selection has more than %d %s, the limit of the Elasticsearch profile store: narrow the selector or the time range", limit, what)
	}
	out := make([]string, len(aggs.T.Buckets))
	for i, b := range aggs.T.Buckets {
		out[i] = b.Key
	}
	return out, nil
}

// luceneLiteral escapes s for a Lucene regular expression.
func luceneLiteral(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
