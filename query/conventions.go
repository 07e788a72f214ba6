package query

import (
	"context"
	"slices"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// conventions serves Loki 3's label conventions over any log store, so
// both stores answer them alike: service_name is an alias of service (a
// selector on either works, results carry both), and every line carries
// detected_level, derived from its level or its body. The stores keep
// their own labels; only the query side knows the aliases.
type conventions struct {
	storage.LogReader
}

var _ storage.LogReader = conventions{}

// storeMatchers splits ms into what the store can evaluate (service_name
// rewritten to service) and the detected_level matchers, evaluated per
// line.
func storeMatchers(ms []*model.LabelMatcher) (store, perLine []*model.LabelMatcher) {
	for _, m := range ms {
		switch m.Name {
		case model.LabelServiceName:
			alias := *m
			alias.Name = model.LabelService
			store = append(store, &alias)
		case model.LabelDetectedLevel:
			perLine = append(perLine, m)
		default:
			store = append(store, m)
		}
	}
	return store, perLine
}

// withConventions returns ls (sorted, as every store returns them) with
// service_name next to service and, when level is not "", detected_level.
func withConventions(dst, ls model.Labels, detected string) model.Labels {
	dst = dst[:0]
	if detected != "" {
		dst = append(dst, model.Label{Name: model.LabelDetectedLevel, Value: detected})
	}
	for _, l := range ls {
		dst = append(dst, l)
		if l.Name == model.LabelService {
			dst = append(dst, model.Label{Name: model.LabelServiceName, Value: l.Value})
		}
	}
	if detected != "" && len(dst) > 1 && dst[1].Name < model.LabelDetectedLevel {
		slices.SortFunc(dst, func(a, b model.Label) int { return strings.Compare(a.Name, b.Name) })
	}
	return dst
}

func (c conventions) Select(ctx context.Context, p storage.SelectParams, fn func(*storage.Row) bool) error {
	return c.selectRows(ctx, p, true, fn)
}

// selectRows is Select; without withLevel the rows lack detected_level
// unless a matcher needs it (volumes and stats group by stream labels
// only, and detecting a level reads the line).
func (c conventions) selectRows(ctx context.Context, p storage.SelectParams, withLevel bool, fn func(*storage.Row) bool) error {
	var perLine []*model.LabelMatcher
	p.Matchers, perLine = storeMatchers(p.Matchers)
	withLevel = withLevel || len(perLine) > 0
	var buf model.Labels
	var row storage.Row
	return c.LogReader.Select(ctx, p, func(r *storage.Row) bool {
		var detected string
		if withLevel {
			detected = model.DetectedLevel(r.Labels.Get(model.LabelLevel), r.Message)
			for _, m := range perLine {
				if !m.Matches(detected) {
					return true
				}
			}
		}
		row = *r
		buf = withConventions(buf, r.Labels, detected)
		row.Labels = buf
		return fn(&row)
	})
}

func (c conventions) LabelNames(ctx context.Context, start, end int64) ([]string, error) {
	names, err := c.LogReader.LabelNames(ctx, start, end)
	if err != nil || !slices.Contains(names, model.LabelService) {
		return names, err
	}
	names = append(names, model.LabelServiceName)
	slices.Sort(names)
	return names, nil
}

// labelNamesMatching returns the label names of the streams matching ms.
func (c conventions) labelNamesMatching(ctx context.Context, start, end int64, ms []*model.LabelMatcher) ([]string, error) {
	series, err := c.Series(ctx, start, end, ms)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, ls := range series {
		for _, l := range ls {
			seen[l.Name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (c conventions) LabelValues(ctx context.Context, name string, start, end int64, ms []*model.LabelMatcher) ([]string, error) {
	store, perLine := storeMatchers(ms)
	switch {
	case name == model.LabelDetectedLevel || len(perLine) > 0:
		return c.lineLabelValues(ctx, name, start, end, ms)
	case name == model.LabelServiceName:
		name = model.LabelService
	}
	return c.LogReader.LabelValues(ctx, name, start, end, store)
}

// lineLabelValues collects the values of name line by line: detected_level
// is not a stream label. Streams with a level have one detected level and
// are asked once; only the lines of streams without one are read.
func (c conventions) lineLabelValues(ctx context.Context, name string, start, end int64, ms []*model.LabelMatcher) ([]string, error) {
	seen := map[string]bool{}
	series, err := c.Series(ctx, start, end, ms)
	if err != nil {
		return nil, err
	}
	_, perLine := storeMatchers(ms)
	needLines := false
	for _, ls := range series {
		lvl := ls.Get(model.LabelLevel)
		if lvl == "" {
			needLines = true
			continue
		}
		detected := model.DetectedLevel(lvl, "")
		if !model.MatchLabels(perLine, model.Labels{{Name: model.LabelDetectedLevel, Value: detected}}) {
			continue
		}
		if v := withConventions(nil, ls, detected).Get(name); v != "" {
			seen[v] = true
		}
	}
	if needLines {
		noLevel, _ := model.NewLabelMatcher(model.LabelLevel, model.MatchEqual, "")
		p := storage.SelectParams{Start: start, End: end, Matchers: append(slices.Clone(ms), noLevel)}
		err := c.Select(ctx, p, func(r *storage.Row) bool {
			if v := r.Labels.Get(name); v != "" {
				seen[v] = true
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

func (c conventions) Series(ctx context.Context, start, end int64, ms []*model.LabelMatcher) ([]model.Labels, error) {
	store, perLine := storeMatchers(ms)
	series, err := c.LogReader.Series(ctx, start, end, store)
	if err != nil {
		return nil, err
	}
	out := series[:0]
	for _, ls := range series {
		// A stream with a level has that detected level; one without may
		// hold lines of any, so it stays.
		if lvl := ls.Get(model.LabelLevel); lvl != "" && len(perLine) > 0 &&
			!model.MatchLabels(perLine, model.Labels{{Name: model.LabelDetectedLevel, Value: model.DetectedLevel(lvl, "")}}) {
			continue
		}
		out = append(out, withConventions(nil, ls, ""))
	}
	return out, nil
}
