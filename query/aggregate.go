package query

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
)

// aggregate applies a vector aggregation step by step.
func aggregate(x *logql.VectorAggregationExpr, inner []*gridSeries, n int) ([]*gridSeries, error) {
	switch x.Op {
	case logql.OpTopK, logql.OpBottomK:
		return topK(x, inner, n), nil
	case logql.OpStddev, logql.OpStdvar:
		return aggregateVariance(x, inner, n), nil
	case logql.OpSort, logql.OpSortDesc:
		return inner, nil // EvalRange orders the result
	}
	groups := map[string]*gridSeries{}
	counts := map[string][]float64{}
	var keyBuf []byte
	for _, s := range inner {
		gl := groupLabels(s.labels, x.Grouping, x.Without)
		keyBuf = appendLabelsKey(keyBuf[:0], gl)
		g := groups[string(keyBuf)]
		if g == nil {
			g = &gridSeries{labels: gl, values: make([]float64, n), present: make([]bool, n)}
			groups[string(keyBuf)] = g
			counts[string(keyBuf)] = make([]float64, n)
		}
		cnt := counts[string(keyBuf)]
		for i := 0; i < n; i++ {
			if !s.present[i] {
				continue
			}
			v := s.values[i]
			switch {
			case !g.present[i]:
				switch x.Op {
				case logql.OpCount:
					g.values[i] = 1
				default:
					g.values[i] = v
				}
			case x.Op == logql.OpSum || x.Op == logql.OpAvg:
				g.values[i] += v
			case x.Op == logql.OpCount:
				g.values[i]++
			case x.Op == logql.OpMin:
				g.values[i] = math.Min(g.values[i], v)
			case x.Op == logql.OpMax:
				g.values[i] = math.Max(g.values[i], v)
			default:
				return nil, fmt.Errorf("unsupported aggregation %q", x.Op)
			}
			g.present[i] = true
			cnt[i]++
		}
	}
	out := make([]*gridSeries, 0, len(groups))
	for k, g := range groups {
		if x.Op == logql.OpAvg {
			for i, c := range counts[k] {
				if c > 0 {
					g.values[i] /= c
				}
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// groupLabels keeps the grouping labels (by) or drops them (without).
func groupLabels(ls model.Labels, grouping []string, without bool) model.Labels {
	return appendGroupLabels(model.Labels{}, ls, grouping, without)
}

// appendGroupLabels appends to dst the labels of ls that groupLabels keeps.
func appendGroupLabels(dst, ls model.Labels, grouping []string, without bool) model.Labels {
	for _, l := range ls {
		if slices.Contains(grouping, l.Name) != without {
			dst = append(dst, l)
		}
	}
	return dst
}

// topK keeps, at each step, the k largest (or smallest) series of each
// group; a series appears at the steps where it ranked.
func topK(x *logql.VectorAggregationExpr, inner []*gridSeries, n int) []*gridSeries {
	out := make([]*gridSeries, len(inner))
	for i, s := range inner {
		out[i] = &gridSeries{labels: s.labels, values: s.values, present: make([]bool, n)}
	}
	byGroup := map[string][]int{}
	var keyBuf []byte
	for i, s := range inner {
		keyBuf = appendLabelsKey(keyBuf[:0], groupLabels(s.labels, x.Grouping, x.Without))
		byGroup[string(keyBuf)] = append(byGroup[string(keyBuf)], i)
	}
	for step := 0; step < n; step++ {
		for _, idx := range byGroup {
			var cand []int
			for _, i := range idx {
				if inner[i].present[step] {
					cand = append(cand, i)
				}
			}
			sort.Slice(cand, func(a, b int) bool {
				va, vb := inner[cand[a]].values[step], inner[cand[b]].values[step]
				if x.Op == logql.OpBottomK {
					return va < vb
				}
				return va > vb
			})
			for j := 0; j < len(cand) && j < x.Param; j++ {
				out[cand[j]].present[step] = true
			}
		}
	}
	return out
}
