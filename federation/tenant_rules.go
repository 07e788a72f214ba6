package federation

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// perTenantQueryFunc evaluates rule expressions over every tenant's series
// at once, each tenant's kept apart: perTenant rewrites the expression so
// that no aggregation or vector matching crosses TenantLabel, and the
// outputs carry the tenant of their inputs (none for the default tenant),
// so a recorded series or an alert belongs to the tenant whose series made
// it. Rules are the operator's (and the golden rules Vigil generates), so
// one rule file serves every tenant.
func perTenantQueryFunc(engine promql.QueryEngine, q storage.Queryable) rules.QueryFunc {
	eval := rules.EngineQueryFunc(engine, q)
	p := parser.NewParser(parser.Options{})
	return func(ctx context.Context, qs string, t time.Time) (promql.Vector, error) {
		expr, err := p.ParseExpr(qs)
		if err != nil {
			return eval(ctx, qs, t) // answers the parse error as before
		}
		perTenant(expr)
		return eval(ctx, expr.String(), t)
	}
}

// perTenant rewrites expr so that its result keeps each tenant's series
// apart: TenantLabel joins every aggregation's by (…) (an aggregation
// without grouping becomes by (vigil_tenant)) and every on (…), and leaves
// every without (…), ignoring (…) and group_left/right (…). Over series of
// the default tenant alone (no TenantLabel) the result is unchanged.
func perTenant(expr parser.Expr) {
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.AggregateExpr:
			if n.Without {
				n.Grouping = drop(n.Grouping)
			} else if !slices.Contains(n.Grouping, TenantLabel) {
				n.Grouping = append(n.Grouping, TenantLabel)
			}
		case *parser.BinaryExpr:
			vm := n.VectorMatching
			if vm == nil {
				break
			}
			if vm.On {
				if !slices.Contains(vm.MatchingLabels, TenantLabel) {
					vm.MatchingLabels = append(vm.MatchingLabels, TenantLabel)
				}
			} else {
				vm.MatchingLabels = drop(vm.MatchingLabels)
			}
			vm.Include = drop(vm.Include)
		}
		return nil
	})
}

func drop(names []string) []string {
	return slices.DeleteFunc(names, func(s string) bool { return s == TenantLabel })
}
