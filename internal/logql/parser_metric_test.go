package logql

import (
	"reflect"
	"testing"
	"time"
)

// TestParseMetricExpr checks the metric syntax beyond counting: unwrap,
// offset, grouping of range aggregations, binary operations, vector() and
// label_replace. Each query prints in canonical form and parses back.
func TestParseMetricExpr(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		e, err := ParseExpr(q)
		if err != nil {
			t.Errorf("ParseExpr(%q): unexpected error: %s", q, err)
			return
		}
		if got := e.String(); got != want {
			t.Errorf("ParseExpr(%q).String()\ngot  %s\nwant %s", q, got, want)
			return
		}
		again, err := ParseExpr(e.String())
		if err != nil {
			t.Errorf("ParseExpr(%q) of the printed form: %s", e.String(), err)
			return
		}
		if !reflect.DeepEqual(again, e) {
			t.Errorf("round trip of %q: got %s; want %s", q, again, e)
		}
	}
	// Unwrap with every function that takes it.
	for _, op := range []string{"sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "stddev_over_time",
		"stdvar_over_time", "first_over_time", "last_over_time", "rate", "rate_counter", "absent_over_time"} {
		f(op+`({a="b"} | json | unwrap latency [5m])`, op+`({a="b"} | json | unwrap latency [5m])`)
	}
	f(`absent_over_time({a="b"}[1m])`, `absent_over_time({a="b"}[1m])`)
	f(`quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(took) | __error__="" [1m]) by (path)`,
		`quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(took) | __error__="" [1m]) by (path)`)
	f(`sum_over_time({a="b"} | unwrap bytes(size) [1m])`, `sum_over_time({a="b"} | unwrap bytes(size) [1m])`)
	f(`sum_over_time({a="b"} | unwrap duration_seconds(d) | d > 1s or x="y" [1m])`, `sum_over_time({a="b"} | unwrap duration_seconds(d) | d > 1s or x="y" [1m])`)
	f(`sum_over_time({a="b"}|unwrap x[1m])`, `sum_over_time({a="b"} | unwrap x [1m])`)
	f(`max_over_time(({a="b"} | json | unwrap x)[1m]) without (host)`, `max_over_time({a="b"} | json | unwrap x [1m]) without (host)`)
	f(`avg_over_time({a="b"} | unwrap x [1m]) by ()`, `avg_over_time({a="b"} | unwrap x [1m]) by ()`)
	f(`{a="b"} | unwrap="x"`, `{a="b"} | unwrap="x"`)
	// Loki also takes the pipeline and the unwrap after the range.
	f(`count_over_time({a="b"}[5m] |= "x" | json)`, `count_over_time({a="b"} |= "x" | json [5m])`)
	f(`sum_over_time({a="b"}[5m] | unwrap x)`, `sum_over_time({a="b"} | unwrap x [5m])`)
	f(`sum_over_time({a="b"}[5m] offset 1m | logfmt | unwrap x | __error__="")`, `sum_over_time({a="b"} | logfmt | unwrap x | __error__="" [5m] offset 1m)`)
	// Offset.
	f(`count_over_time({a="b"}[5m] offset 1h)`, `count_over_time({a="b"}[5m] offset 1h)`)
	f(`sum_over_time({a="b"} | unwrap x [5m] offset 90s)`, `sum_over_time({a="b"} | unwrap x [5m] offset 1m30s)`)
	// New vector aggregations.
	for _, op := range []string{"stddev", "stdvar", "sort", "sort_desc"} {
		f(op+` by (a) (rate({a="b"}[1m]))`, op+` by (a) (rate({a="b"}[1m]))`)
	}
	// Binary operations, precedence and associativity.
	f(`sum(rate({a="b"}[1m])) / 60`, `sum(rate({a="b"}[1m])) / 60`)
	f(`sum(rate({a="b"}[1m]))/60`, `sum(rate({a="b"}[1m])) / 60`)
	f(`sum(rate({a="b"}[1m])) -5`, `sum(rate({a="b"}[1m])) - 5`)
	f(`sum(rate({a="b"}[1m])) - -5`, `sum(rate({a="b"}[1m])) - -5`)
	f(`1 + 2 * 3`, `1 + (2 * 3)`)
	f(`(1 + 2) * 3`, `(1 + 2) * 3`)
	f(`1 - 2 - 3`, `(1 - 2) - 3`)
	f(`1-2`, `1 - 2`)
	f(`2 ^ 3 ^ 2`, `2 ^ (3 ^ 2)`)
	f(`5 % 3 + 1e3`, `(5 % 3) + 1000`)
	f(`2 > bool 1`, `2 > bool 1`)
	f(`count_over_time({a="b"}[1m]) > 10`, `count_over_time({a="b"}[1m]) > 10`)
	f(`count_over_time({a="b"}[1m]) >= bool 10`, `count_over_time({a="b"}[1m]) >= bool 10`)
	f(`count_over_time({a="b"}[1m]) == 1 or count_over_time({a="b"}[1m]) != 2 and count_over_time({a="b"}[1m]) < 3`,
		`(count_over_time({a="b"}[1m]) == 1) or ((count_over_time({a="b"}[1m]) != 2) and (count_over_time({a="b"}[1m]) < 3))`)
	f(`rate({a="b"}[1m]) <= 3 unless rate({a="b"}[1m])`, `(rate({a="b"}[1m]) <= 3) unless rate({a="b"}[1m])`)
	f(`sum by (level) (count_over_time({a="b"}[1m])) or vector(0)`, `sum by (level) (count_over_time({a="b"}[1m])) or vector(0)`)
	f(`rate({a="b"}[1m]) / on (host) group_left (env) rate({c="d"}[1m])`, `rate({a="b"}[1m]) / on (host) group_left (env) rate({c="d"}[1m])`)
	f(`rate({a="b"}[1m]) * ignoring (level) group_right rate({c="d"}[1m])`, `rate({a="b"}[1m]) * ignoring (level) group_right () rate({c="d"}[1m])`)
	f(`rate({a="b"}[1m]) + on () rate({c="d"}[1m])`, `rate({a="b"}[1m]) + on () rate({c="d"}[1m])`)
	f(`vector(1)+vector(1)`, `vector(1) + vector(1)`)
	f(`-1.5`, `-1.5`)
	f(`label_replace(rate({a="b"}[1m]), "svc", "$1", "service", "(.*)-api")`, `label_replace(rate({a="b"}[1m]), "svc", "$1", "service", "(.*)-api")`)
	f(`sum(label_replace(vector(1), "a", "b", "c", ".*")) * 2`, `sum(label_replace(vector(1), "a", "b", "c", ".*")) * 2`)
	f(`topk(2, sum by (a) (rate({a="b"}[1m])) / 2)`, `topk(2, sum by (a) (rate({a="b"}[1m])) / 2)`)
	// What Grafana generates for log volume.
	f(`sum by (level, detected_level) (count_over_time({a="b"} |= "x" [1m]))`, `sum by (level, detected_level) (count_over_time({a="b"} |= "x" [1m]))`)
}

func TestParseUnwrapTree(t *testing.T) {
	e, err := ParseExpr(`quantile_over_time(0.5, {a="b"} | json | unwrap bytes(size) | __error__="" [2m] offset 1m) without (host)`)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := e.(*RangeAggregationExpr)
	if !ok {
		t.Fatalf("got %T; want *RangeAggregationExpr", e)
	}
	if r.Op != OpQuantileOverTime || r.Param != 0.5 || r.Range != 2*time.Minute || r.Offset != time.Minute ||
		!r.Grouped || !r.Without || !reflect.DeepEqual(r.Grouping, []string{"host"}) {
		t.Errorf("got %+v; want quantile 0.5 over 2m offset 1m without (host)", r)
	}
	if len(r.Selector.Stages) != 1 {
		t.Errorf("got stages %v; want only json before the unwrap", r.Selector.Stages)
	}
	if u := r.Unwrap; u == nil || u.Label != "size" || u.Conv != ConvBytes || len(u.Filters) != 1 || u.Filters[0].String() != `__error__=""` {
		t.Errorf("got unwrap %+v; want bytes(size) with one filter", r.Unwrap)
	}
	b, err := ParseExpr(`a_metric_free_query_is_not_allowed`)
	if err == nil {
		t.Errorf("got %v; want an error", b)
	}
}
