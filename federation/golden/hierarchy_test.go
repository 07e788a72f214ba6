package golden

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/util/teststorage"
)

// dcFleet is the part of the fleet in one datacenter.
func dcFleet(dc string) string {
	var keep []string
	for _, line := range strings.Split(fleet(), "\n") {
		if line == "load 1m" || strings.Contains(line, `dc="`+dc+`"`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// TestGlobalLevelFromFederatedAggregates runs the two-level hierarchy:
// each datacenter evaluates the rules over its own services; the global
// level gets only their service_grade_dc series (what /federate with
// match[]={__name__=~"service_grade_dc(_le)?:.+"} hands it) and runs the
// same rules with federated: true. Its figures and alerts must be the
// single-level ones.
func TestGlobalLevelFromFederatedAggregates(t *testing.T) {
	dcConf, err := ParseConfig([]byte("conventions: [{preset: vigil-http}, {preset: otel-http}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	globalConf, err := ParseConfig([]byte("conventions: [{preset: vigil-http}, {preset: otel-http}]\nfederated: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	global := teststorage.New(t)
	for _, dc := range []string{"a", "b"} {
		st, engine, _ := evaluate(t, dcConf, promqltest.LoadedStorage(t, dcFleet(dc)))
		app := global.Appender(context.Background())
		for m := 1; m <= evalMinutes; m++ {
			ts := time.Unix(int64(m*60), 0)
			q, err := engine.NewInstantQuery(context.Background(), st, nil, `{__name__=~"service_grade_dc(_le)?:.+"}`, ts)
			if err != nil {
				t.Fatal(err)
			}
			v, err := q.Exec(context.Background()).Vector()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range v {
				if s.T != ts.UnixMilli() {
					continue // a stale look-back, not this step's record
				}
				if s.H != nil {
					_, err = app.AppendHistogram(0, s.Metric, s.T, nil, s.H)
				} else {
					_, err = app.Append(0, s.Metric, s.T, s.F)
				}
				if err != nil {
					t.Fatalf("appending %s: %v", s.Metric, err)
				}
			}
			q.Close()
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	single, singleEngine, singleGroups := evaluated(t, dcConf)
	st, engine, groups := evaluate(t, globalConf, global)
	for _, expr := range []string{
		`service_grade:vigil_http_requests:rate5m{service="checkout"}`,
		`service_grade:vigil_http_errors:ratio_rate5m{service="checkout"}`,
		`service_grade:vigil_http_errors:ratio_rate1h{service="checkout"}`,
		`grade:vigil_http_errors:ratio_rate5m{grade="1"}`,
		`service_grade:vigil_http_request_duration_seconds:p90_rate5m{service="checkout"}`,
		`service_grade:http_server_requests:rate5m{service="search"}`,
		`service_grade:http_server_request_duration_seconds:p99_rate5m{service="search"}`,
		`service_grade:process_cpu_utilisation:ratio_rate5m{service="checkout"}`,
	} {
		want := scalarOf(t, single, singleEngine, expr)
		got := scalarOf(t, st, engine, expr)
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("global %s = %v; single level %v", expr, got, want)
		}
	}
	// The global level records nothing at the datacenter level: the
	// federated series are the only ones.
	if v := query(t, st, engine, `count({__name__="service_grade_dc:vigil_http_requests:rate5m"})`); len(v) != 1 || v[0].F != 5 {
		t.Errorf("global service_grade_dc series: %v; want the 5 federated (checkout and catalog in 2 dcs, cart in 1)", v)
	}
	if got, want := firingAlerts(groups), firingAlerts(singleGroups); !sameKeys(got, want) || !got["checkout/page"] {
		t.Errorf("global firing alerts %v; single level %v (checkout/page expected)", got, want)
	}
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
