package federation

import (
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vigilhq/vigil/federation/golden"
)

func TestPerTenant(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	f := func(in, want string) {
		t.Helper()
		e, err := p.ParseExpr(in)
		if err != nil {
			t.Fatal(err)
		}
		perTenant(e)
		if got := e.String(); got != want {
			t.Errorf("perTenant(%s):\ngot  %s\nwant %s", in, got, want)
		}
	}
	f(`sum(rate(x[5m]))`, `sum by (vigil_tenant) (rate(x[5m]))`)
	f(`sum by (service) (x)`, `sum by (service, vigil_tenant) (x)`)
	f(`sum without (pod) (x)`, `sum without (pod) (x)`)
	f(`sum without (vigil_tenant) (x)`, `sum without () (x)`)
	f(`histogram_quantile(0.99, sum by (le) (rate(x[5m])))`, `histogram_quantile(0.99, sum by (le, vigil_tenant) (rate(x[5m])))`)
	f(`a / on (service) group_left (team) b`, `a / on (service, vigil_tenant) group_left (team) b`)
	f(`a / ignoring (code, vigil_tenant) b`, `a / ignoring (code) b`)
	f(`a and b`, `a and b`)
	f(`max(sum by (a) (x)) > 1`, `max by (vigil_tenant) (sum by (a, vigil_tenant) (x)) > 1`)
	f(`topk(3, x)`, `topk by (vigil_tenant) (3, x)`)
	f(`x > 1`, `x > 1`)
}

// Every golden rule, rewritten, is valid PromQL that keeps the tenants'
// series apart in every aggregation.
func TestPerTenantGoldenRules(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	n := 0
	for _, file := range golden.Generate(golden.DefaultConfig()) {
		for _, g := range file.Groups.Groups {
			for _, r := range g.Rules {
				e, err := p.ParseExpr(r.Expr)
				if err != nil {
					t.Fatalf("%s: %v", r.Expr, err)
				}
				perTenant(e)
				out := e.String()
				e2, err := p.ParseExpr(out)
				if err != nil {
					t.Fatalf("rewritten %s: %v (from %s)", out, err, r.Expr)
				}
				parser.Inspect(e2, func(node parser.Node, _ []parser.Node) error {
					if a, ok := node.(*parser.AggregateExpr); ok && !a.Without {
						found := false
						for _, l := range a.Grouping {
							found = found || l == TenantLabel
						}
						if !found {
							t.Errorf("%s: aggregation %s does not keep %s", out, a, TenantLabel)
						}
					}
					return nil
				})
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no golden rules")
	}
	t.Logf("%d golden rules rewritten", n)
}
