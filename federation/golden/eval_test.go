package golden

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// The synthetic fleet, sampled every minute for evalMinutes:
//
//   - checkout (SDK, grade 1): dc a has two instances serving 10 req/s each
//     with 1% errors and latency uniform on [0, 0.5 s]; dc b has one
//     instance serving 10 req/s with 5% errors and latency uniform on
//     [0, 1 s]. So dc a: 20 req/s, ratio 0.01; dc b: 10 req/s, ratio 0.05;
//     the service: 30 req/s, 0.7 errors/s, ratio 0.7/30 (not the mean of
//     the two dcs' ratios, 0.03).
//   - catalog (SDK, grade 4): the same traffic as checkout.
//   - cart (SDK, grade 1): one instance in dc a, 10 req/s, 0.05% errors.
//   - search (OpenTelemetry, no grade label, service from job): native
//     histograms only, 10 req/s per dc, half of the requests in (0.25,
//     0.5] and half in (0.5, 1]; 2% are 503s.
const evalMinutes = 70

// bucketBounds are the classic buckets of the SDK series.
var bucketBounds = []float64{0.1, 0.25, 0.5, 1}

// sdkInstance writes the load lines of one SDK instance: reqPerMin
// requests a minute, errPerMin of them 500s, latency uniform on
// [0, maxLatency].
func sdkInstance(b *strings.Builder, service, grade, dc, instance string, reqPerMin, errPerMin, maxLatency float64) {
	base := fmt.Sprintf(`service=%q, grade=%q, dc=%q, job="services", instance=%q, route="/x", method="GET"`, service, grade, dc, instance)
	for _, c := range []struct {
		code string
		n    float64
	}{{"200", reqPerMin - errPerMin}, {"500", errPerMin}} {
		if c.n == 0 {
			continue
		}
		fmt.Fprintf(b, "  vigil_http_requests_total{%s, code=%q} 0+%gx%d\n", base, c.code, c.n, evalMinutes)
		for _, le := range bucketBounds {
			share := math.Min(le/maxLatency, 1)
			fmt.Fprintf(b, "  vigil_http_request_duration_seconds_bucket{%s, code=%q, le=\"%g\"} 0+%gx%d\n", base, c.code, le, c.n*share, evalMinutes)
		}
		fmt.Fprintf(b, "  vigil_http_request_duration_seconds_bucket{%s, code=%q, le=\"+Inf\"} 0+%gx%d\n", base, c.code, c.n, evalMinutes)
	}
	target := fmt.Sprintf(`dc=%q, job="services", instance=%q`, dc, instance)
	fmt.Fprintf(b, "  vigil_http_inflight_requests{service=%q, grade=%q, %s} 3x%d\n", service, grade, target, evalMinutes)
	fmt.Fprintf(b, "  process_cpu_seconds_total{%s} 0+30x%d\n", target, evalMinutes) // 0.5 CPU
	fmt.Fprintf(b, "  go_sched_gomaxprocs_threads{%s} 2x%d\n", target, evalMinutes)
	fmt.Fprintf(b, "  process_resident_memory_bytes{%s} 1e8x%d\n", target, evalMinutes)
}

func fleet() string {
	var b strings.Builder
	b.WriteString("load 1m\n")
	for _, svc := range []struct{ name, grade string }{{"checkout", "1"}, {"catalog", "4"}} {
		sdkInstance(&b, svc.name, svc.grade, "a", svc.name+"-a1", 600, 6, 0.5)
		sdkInstance(&b, svc.name, svc.grade, "a", svc.name+"-a2", 600, 6, 0.5)
		sdkInstance(&b, svc.name, svc.grade, "b", svc.name+"-b1", 600, 30, 1)
	}
	sdkInstance(&b, "cart", "1", "a", "cart-a1", 600, 0.3, 0.5)
	for _, dc := range []string{"a", "b"} {
		for _, c := range []struct {
			code string
			n    float64
		}{{"200", 588}, {"503", 12}} {
			// Schema 0: bucket -1 is (0.25, 0.5], bucket 0 is (0.5, 1].
			fmt.Fprintf(&b, "  http_server_request_duration_seconds{job=\"search\", dc=%q, http_response_status_code=%q} {{schema:0 sum:0 count:0}}+{{schema:0 sum:%g count:%g offset:-1 buckets:[%g %g]}}x%d\n",
				dc, c.code, c.n*0.56, c.n, c.n/2, c.n/2, evalMinutes)
		}
	}
	// A service with no metrics of its own, only spans: the ingester's
	// span metrics (milliseconds, Jaeger's labels), two operations in dc
	// a, 1200 calls a minute, 24 of them errors, latency uniform on
	// [0, 400] ms.
	for _, op := range []string{"GET /a", "GET /b"} {
		base := fmt.Sprintf(`service_name="ledger", span_name=%q, span_kind="SPAN_KIND_SERVER", grade="2", dc="a", job="ingester", instance="i1"`, op)
		for _, c := range []struct {
			status string
			n      float64
		}{{"STATUS_CODE_UNSET", 588}, {"STATUS_CODE_ERROR", 12}} {
			fmt.Fprintf(&b, "  traces_span_metrics_calls_total{%s, status_code=%q} 0+%gx%d\n", base, c.status, c.n, evalMinutes)
			for _, le := range []float64{100, 200, 400} {
				fmt.Fprintf(&b, "  traces_span_metrics_duration_milliseconds_bucket{%s, status_code=%q, le=\"%g\"} 0+%gx%d\n", base, c.status, le, c.n*le/400, evalMinutes)
			}
			fmt.Fprintf(&b, "  traces_span_metrics_duration_milliseconds_bucket{%s, status_code=%q, le=\"+Inf\"} 0+%gx%d\n", base, c.status, c.n, evalMinutes)
		}
	}
	return b.String()
}

// evaluated loads the fleet, evaluates every generated group once a
// minute over it, and returns the storage, an engine and the groups.
func evaluated(t *testing.T, c *Config) (storage.Storage, promql.QueryEngine, map[string]*rules.Group) {
	t.Helper()
	return evaluate(t, c, promqltest.LoadedStorage(t, fleet()))
}

// evaluate evaluates every generated group once a minute over st.
func evaluate(t *testing.T, c *Config, st storage.Storage) (storage.Storage, promql.QueryEngine, map[string]*rules.Group) {
	t.Helper()
	engine := promqltest.NewTestEngineWithOpts(t, promql.EngineOpts{
		MaxSamples: 10_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		EnableDelayedNameRemoval: true,
	})
	dir := t.TempDir()
	paths, err := WriteDir(dir, Generate(c))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(engine, st),
		AppendableV2: st,
		Queryable:    st,
		Context:      ctx,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
	})
	groups, errs := m.LoadGroups(time.Minute, labels.EmptyLabels(), "", nil, false, paths...)
	if len(errs) > 0 {
		t.Fatalf("loading %s: %v", filepath.Join(dir, "*"), errs)
	}
	// At each step the golden groups first: the SLO groups read them.
	for m := 1; m <= evalMinutes; m++ {
		ts := time.Unix(int64(m*60), 0)
		for _, prefix := range []string{"golden_", "slo_"} {
			for _, g := range groups {
				if strings.HasPrefix(g.Name(), prefix) {
					g.Eval(ctx, ts)
				}
			}
		}
	}
	return st, engine, groups
}

// firingAlerts returns service/severity of every firing alert.
func firingAlerts(groups map[string]*rules.Group) map[string]bool {
	firing := map[string]bool{}
	for _, g := range groups {
		for _, r := range g.AlertingRules() {
			for _, a := range r.ActiveAlerts() {
				if a.State == rules.StateFiring {
					firing[a.Labels.Get("service")+"/"+a.Labels.Get("severity")] = true
				}
			}
		}
	}
	return firing
}

// query returns the instant vector of expr at the end of the fleet's data.
func query(t *testing.T, st storage.Storage, engine promql.QueryEngine, expr string) promql.Vector {
	t.Helper()
	q, err := engine.NewInstantQuery(context.Background(), st, nil, expr, time.Unix(evalMinutes*60, 0))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", expr, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// scalarOf returns the value of the single series expr selects.
func scalarOf(t *testing.T, st storage.Storage, engine promql.QueryEngine, expr string) float64 {
	t.Helper()
	v := query(t, st, engine, expr)
	if len(v) != 1 {
		t.Fatalf("%s: got %d series, want 1: %v", expr, len(v), v)
	}
	if v[0].H != nil {
		t.Fatalf("%s: got a histogram, want a float", expr)
	}
	return v[0].F
}

func TestGoldenSignalsAreExact(t *testing.T) {
	c, err := ParseConfig([]byte("conventions: [{preset: vigil-http}, {preset: otel-http}, {preset: vigil-spans}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, engine, _ := evaluated(t, c)

	f := func(expr string, want, tolerance float64) {
		t.Helper()
		got := scalarOf(t, st, engine, expr)
		if math.Abs(got-want) > tolerance {
			t.Errorf("%s = %v; want %v (± %v)", expr, got, want, tolerance)
		}
	}
	const exact = 1e-9
	// Traffic and errors, per dc, per service, per grade.
	f(`service_grade_dc:vigil_http_requests:rate5m{service="checkout", dc="a"}`, 20, exact)
	f(`service_grade_dc:vigil_http_requests:rate5m{service="checkout", dc="b"}`, 10, exact)
	f(`service_grade:vigil_http_requests:rate5m{service="checkout"}`, 30, exact)
	f(`service_grade_dc:vigil_http_errors:rate5m{service="checkout", dc="a"}`, 0.2, exact)
	f(`service_grade_dc:vigil_http_errors:ratio_rate5m{service="checkout", dc="a"}`, 0.01, exact)
	f(`service_grade_dc:vigil_http_errors:ratio_rate5m{service="checkout", dc="b"}`, 0.05, exact)
	f(`service_grade:vigil_http_errors:rate5m{service="checkout"}`, 0.7, exact)
	f(`service_grade:vigil_http_errors:ratio_rate5m{service="checkout"}`, 0.7/30, exact)
	f(`grade:vigil_http_requests:rate5m{grade="1"}`, 40, exact) // checkout and cart
	f(`grade:vigil_http_errors:ratio_rate5m{grade="1"}`, (0.7+0.005)/40, exact)
	f(`grade:vigil_http_errors:ratio_rate5m{grade="4"}`, 0.7/30, exact)

	// Latency from classic buckets. Latencies are uniform within each
	// bucket, so interpolation is exact: dc a is uniform on [0, 0.5],
	// dc b on [0, 1]; the service's CDF is (20·min(2x,1) + 10·min(x,1))/30.
	f(`service_grade_dc:vigil_http_request_duration_seconds:p50_rate5m{service="checkout", dc="a"}`, 0.25, exact)
	f(`service_grade_dc:vigil_http_request_duration_seconds:p50_rate5m{service="checkout", dc="b"}`, 0.5, exact)
	f(`service_grade:vigil_http_request_duration_seconds:p50_rate5m{service="checkout"}`, 0.3, exact)
	f(`service_grade:vigil_http_request_duration_seconds:p90_rate5m{service="checkout"}`, 0.7, exact)
	f(`service_grade:vigil_http_request_duration_seconds:p99_rate5m{service="checkout"}`, 0.97, exact)

	// In-flight and process saturation, joined to the SDK's labels.
	f(`service_grade_dc:vigil_http_inflight_requests:avg5m{service="checkout", dc="a"}`, 6, exact)
	f(`service_grade:vigil_http_inflight_requests:avg5m{service="checkout"}`, 9, exact)
	f(`service_grade_dc:process_cpu_seconds:rate5m{service="checkout", dc="a"}`, 1, exact)
	f(`service_grade:process_cpu_utilisation:ratio_rate5m{service="checkout"}`, 1.5/6, exact)
	f(`service_grade:process_resident_memory_bytes:sum{service="checkout"}`, 3e8, exact)

	// From spans alone: the same signals, latency in seconds.
	f(`service_grade_dc:spans_requests:rate5m{service="ledger", grade="2", dc="a"}`, 20, exact)
	f(`service_grade:spans_errors:ratio_rate5m{service="ledger", grade="2"}`, 0.02, exact)
	f(`service_grade:spans_request_duration_seconds:p50_rate5m{service="ledger"}`, 0.2, exact)
	f(`service_grade:spans_request_duration_seconds:p99_rate5m{service="ledger"}`, 0.396, exact)

	// OpenTelemetry: traffic from the native histograms' counts, service
	// from job, the default grade 4.
	f(`service_grade_dc:http_server_requests:rate5m{service="search", grade="4", dc="a"}`, 10, exact)
	f(`service_grade:http_server_requests:rate5m{service="search", grade="4"}`, 20, exact)
	f(`service_grade:http_server_errors:ratio_rate5m{service="search"}`, 0.02, exact)
	// Half the requests are in (0.25, 0.5], half in (0.5, 1]: the median
	// is 0.5, p90 and p99 fall in (0.5, 1]. Native-histogram
	// interpolation is within the bucket; the bucket is the error bound.
	inBucket := func(expr string, lo, hi float64) {
		t.Helper()
		got := scalarOf(t, st, engine, expr)
		if got < lo || got > hi {
			t.Errorf("%s = %v; want within the bucket [%v, %v]", expr, got, lo, hi)
		}
	}
	inBucket(`service_grade:http_server_request_duration_seconds:p50_rate5m{service="search"}`, 0.25, 0.5)
	inBucket(`service_grade:http_server_request_duration_seconds:p90_rate5m{service="search"}`, 0.5, 1)
	inBucket(`service_grade:http_server_request_duration_seconds:p99_rate5m{service="search"}`, 0.5, 1)
	// p90 < p99 within the same bucket.
	if p90, p99 := scalarOf(t, st, engine, `service_grade:http_server_request_duration_seconds:p90_rate5m{service="search"}`),
		scalarOf(t, st, engine, `service_grade:http_server_request_duration_seconds:p99_rate5m{service="search"}`); !(p90 < p99) {
		t.Errorf("native p90 = %v, p99 = %v; want p90 < p99", p90, p99)
	}
}

func TestBurnRateAlertsFollowTheGrade(t *testing.T) {
	c, err := ParseConfig([]byte("conventions: [{preset: vigil-http}]\nprocess: {disabled: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, groups := evaluated(t, c)

	firing := firingAlerts(groups)
	f := func(key string, want bool) {
		t.Helper()
		if firing[key] != want {
			t.Errorf("alert %s firing = %v; want %v (firing: %v)", key, firing[key], want, firing)
		}
	}
	// 2.33% errors: 23× the grade-1 budget (0.1%), under half the grade-4
	// budget (5%).
	f("checkout/page", true)
	f("checkout/ticket", true)
	f("catalog/page", false)
	f("catalog/ticket", false)
	// 0.05% errors: half the grade-1 budget.
	f("cart/page", false)
	f("cart/ticket", false)
}
