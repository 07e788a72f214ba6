package query

import (
	"context"
	"math"
	"regexp"
	"sort"

	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
)

// constSeries is a series of value v at every step.
func constSeries(ls model.Labels, v float64, n int) *gridSeries {
	g := &gridSeries{labels: ls, values: make([]float64, n), present: make([]bool, n)}
	for i := range g.values {
		g.values[i], g.present[i] = v, true
	}
	return g
}

// evalScalar evaluates an expression for which logql.IsScalar holds.
func evalScalar(e logql.Expr) float64 {
	switch e := e.(type) {
	case *logql.LiteralExpr:
		return e.Val
	case *logql.BinOpExpr:
		v, _ := binOpValue(e.Op, evalScalar(e.Left), evalScalar(e.Right), true)
		return v
	}
	return math.NaN()
}

// binOpValue applies an arithmetic or comparison operator. A comparison
// without bool keeps l when it holds and drops the sample otherwise.
func binOpValue(op string, l, r float64, returnBool bool) (float64, bool) {
	var c bool
	switch op {
	case logql.OpAdd:
		return l + r, true
	case logql.OpSub:
		return l - r, true
	case logql.OpMul:
		return l * r, true
	case logql.OpDiv:
		return l / r, true
	case logql.OpMod:
		return math.Mod(l, r), true
	case logql.OpPow:
		return math.Pow(l, r), true
	case logql.OpEq:
		c = l == r
	case logql.OpNe:
		c = l != r
	case logql.OpGt:
		c = l > r
	case logql.OpGte:
		c = l >= r
	case logql.OpLt:
		c = l < r
	case logql.OpLte:
		c = l <= r
	}
	if returnBool {
		if c {
			return 1, true
		}
		return 0, true
	}
	return l, c
}

func (e *Engine) evalBinOp(ctx context.Context, x *logql.BinOpExpr, start, step int64, n int, st *Stats) ([]*gridSeries, error) {
	ls, rs := logql.IsScalar(x.Left), logql.IsScalar(x.Right)
	if ls && rs {
		return []*gridSeries{constSeries(model.Labels{}, evalScalar(x), n)}, nil
	}
	if ls || rs {
		vecExpr, sc := x.Left, x.Right
		if ls {
			vecExpr, sc = x.Right, x.Left
		}
		vec, err := e.eval(ctx, vecExpr, start, step, n, st)
		if err != nil {
			return nil, err
		}
		s := evalScalar(sc)
		for _, g := range vec {
			for i, ok := range g.present {
				if !ok {
					continue
				}
				l, r := g.values[i], s
				if ls {
					l, r = s, l
				}
				v, keep := binOpValue(x.Op, l, r, x.Bool)
				if logql.IsComparison(x.Op) && !x.Bool {
					v = g.values[i] // the vector's value, on either side
				}
				g.values[i], g.present[i] = v, keep
			}
		}
		return vec, nil
	}
	left, err := e.eval(ctx, x.Left, start, step, n, st)
	if err != nil {
		return nil, err
	}
	right, err := e.eval(ctx, x.Right, start, step, n, st)
	if err != nil {
		return nil, err
	}
	if logql.IsSetOp(x.Op) {
		return setOp(x, left, right, n), nil
	}
	return vectorBinOp(x, left, right, n)
}

// signature is the key two series match on.
func signature(ls model.Labels, m *logql.VectorMatching) string {
	if m == nil {
		return string(appendLabelsKey(nil, ls))
	}
	return string(appendLabelsKey(nil, groupLabels(ls, m.Labels, !m.On)))
}

// setOp evaluates and, or and unless step by step.
func setOp(x *logql.BinOpExpr, left, right []*gridSeries, n int) []*gridSeries {
	lsig := make([]string, len(left))
	for i, s := range left {
		lsig[i] = signature(s.labels, x.Matching)
	}
	rsig := make([]string, len(right))
	for i, s := range right {
		rsig[i] = signature(s.labels, x.Matching)
	}
	present := func(series []*gridSeries, sigs []string, step int) map[string]bool {
		m := map[string]bool{}
		for i, s := range series {
			if s.present[step] {
				m[sigs[i]] = true
			}
		}
		return m
	}
	out := make([]*gridSeries, 0, len(left)+len(right))
	for _, s := range left {
		out = append(out, &gridSeries{labels: s.labels, values: s.values, present: append([]bool(nil), s.present...)})
	}
	var extra []*gridSeries
	if x.Op == logql.OpOr {
		for _, s := range right {
			extra = append(extra, &gridSeries{labels: s.labels, values: s.values, present: make([]bool, n)})
		}
	}
	for step := 0; step < n; step++ {
		switch x.Op {
		case logql.OpAnd, logql.OpUnless:
			rp := present(right, rsig, step)
			for i, g := range out {
				if g.present[step] && rp[lsig[i]] != (x.Op == logql.OpAnd) {
					g.present[step] = false
				}
			}
		case logql.OpOr:
			lp := present(left, lsig, step)
			for i, s := range right {
				extra[i].present[step] = s.present[step] && !lp[rsig[i]]
			}
		}
	}
	return append(out, extra...)
}

// vectorBinOp evaluates an arithmetic or comparison operator between two
// vectors, matching their series one to one, or many to one with
// group_left / group_right.
func vectorBinOp(x *logql.BinOpExpr, left, right []*gridSeries, n int) ([]*gridSeries, error) {
	m := x.Matching
	card := logql.CardOneToOne
	if m != nil {
		card = m.Card
	}
	many, one := left, right
	if card == logql.CardOneToMany {
		many, one = right, left
	}
	manySig := make([]string, len(many))
	for i, s := range many {
		manySig[i] = signature(s.labels, m)
	}
	oneSig := make([]string, len(one))
	for i, s := range one {
		oneSig[i] = signature(s.labels, m)
	}
	outs := newGridSet(n)
	side := map[bool]string{true: "right", false: "left"}
	for step := 0; step < n; step++ {
		bySig := map[string]int{}
		for j, s := range one {
			if !s.present[step] {
				continue
			}
			if k, dup := bySig[oneSig[j]]; dup {
				return nil, badParam("found duplicate series for the match group on the %s hand-side of the operation: [%s, %s]; many-to-many matching not allowed: matching labels must be unique on one side",
					side[card != logql.CardOneToMany], one[k].labels, s.labels)
			}
			bySig[oneSig[j]] = j
		}
		for i, s := range many {
			if !s.present[step] {
				continue
			}
			j, ok := bySig[manySig[i]]
			if !ok {
				continue
			}
			l, r := s.values[step], one[j].values[step]
			if card == logql.CardOneToMany {
				l, r = r, l
			}
			v, keep := binOpValue(x.Op, l, r, x.Bool)
			if !keep {
				continue
			}
			g := outs.get(resultLabels(s.labels, one[j].labels, m, card))
			if g.present[step] {
				if card == logql.CardOneToOne {
					return nil, badParam("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
				}
				return nil, badParam("multiple matches for labels: grouping labels must ensure unique matches")
			}
			g.values[step], g.present[step] = v, true
		}
	}
	return outs.order, nil
}

// resultLabels are the labels of a matched pair, as Prometheus builds
// them: one to one, the on (…) labels or all but the ignoring (…) ones; with
// group_left/right, the "many" side's labels plus the included labels of
// the "one" side.
func resultLabels(manyLs, oneLs model.Labels, m *logql.VectorMatching, card string) model.Labels {
	if m == nil {
		return manyLs
	}
	if card == logql.CardOneToOne {
		return groupLabels(manyLs, m.Labels, !m.On)
	}
	if len(m.Include) == 0 {
		return manyLs
	}
	mm := manyLs.Map()
	for _, name := range m.Include {
		if v := oneLs.Get(name); v != "" {
			mm[name] = v
		} else {
			delete(mm, name)
		}
	}
	return model.LabelsFromMap(mm)
}

// labelReplace applies label_replace to every series.
func labelReplace(x *logql.LabelReplaceExpr, inner []*gridSeries, n int) ([]*gridSeries, error) {
	re, err := regexp.Compile("^(?:" + x.Regex + ")$")
	if err != nil {
		return nil, badParam("invalid regular expression in label_replace(): %s", x.Regex)
	}
	outs := newGridSet(n)
	for _, s := range inner {
		ls := s.labels
		src := ls.Get(x.Src)
		if idx := re.FindStringSubmatchIndex(src); idx != nil {
			res := string(re.ExpandString(nil, x.Replacement, src, idx))
			mm := ls.Map()
			if res == "" {
				delete(mm, x.Dst)
			} else {
				mm[x.Dst] = res
			}
			ls = model.LabelsFromMap(mm)
		}
		g := outs.get(ls)
		for i, ok := range s.present {
			if !ok {
				continue
			}
			if g.present[i] {
				return nil, badParam("vector cannot contain metrics with the same labelset")
			}
			g.values[i], g.present[i] = s.values[i], true
		}
	}
	return outs.order, nil
}

// sortByLastValue orders series by the value of their last point, as
// sort and sort_desc order an instant query's result.
func sortByLastValue(out []Series, desc bool) {
	last := func(s Series) float64 { return s.Points[len(s.Points)-1].V }
	sort.SliceStable(out, func(i, j int) bool {
		if desc {
			return last(out[i]) > last(out[j])
		}
		return last(out[i]) < last(out[j])
	})
}

// aggregateVariance computes stddev and stdvar (population) step by step
// with Welford's algorithm.
func aggregateVariance(x *logql.VectorAggregationExpr, inner []*gridSeries, n int) []*gridSeries {
	type acc struct{ count, mean, aux []float64 }
	groups := newGridSet(n)
	accs := map[*gridSeries]*acc{}
	for _, s := range inner {
		g := groups.get(groupLabels(s.labels, x.Grouping, x.Without))
		a := accs[g]
		if a == nil {
			a = &acc{count: make([]float64, n), mean: make([]float64, n), aux: make([]float64, n)}
			accs[g] = a
		}
		for i, ok := range s.present {
			if !ok {
				continue
			}
			v := s.values[i]
			a.count[i]++
			delta := v - a.mean[i]
			a.mean[i] += delta / a.count[i]
			a.aux[i] += delta * (v - a.mean[i])
		}
	}
	for g, a := range accs {
		for i, c := range a.count {
			if c == 0 {
				continue
			}
			v := a.aux[i] / c
			if x.Op == logql.OpStddev {
				v = math.Sqrt(v)
			}
			g.values[i], g.present[i] = v, true
		}
	}
	return groups.order
}
