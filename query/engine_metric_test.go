package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// metricRows is the data set of the metric tests; every expected value
// below is worked out by hand from it. Times are seconds after base.
//
//	api/h1: 10 latency=1  took=100ms size=1KB   20 latency=3 took=1s size=2KB
//	        30 latency=2  took=250ms size=512   40 latency=6 took=2s size=1KiB
//	api/h2: 15 latency=10 took=1m size=10B      35 latency=abc took=zzz size=big
//	db/h1:  25 "no fields here"                 45 "not json either"
//	ctr/h3: 10 c=10  20 c=20  30 c=5 (reset)  40 c=15
func metricRows() []storage.Row {
	var rows []storage.Row
	for _, l := range metricLines() {
		rows = append(rows, storage.Row{Timestamp: base + int64(l.sec)*1e9, Message: l.msg,
			Labels: model.LabelsFromMap(map[string]string{"service": l.service, "host": l.host, "level": l.level})})
	}
	return rows
}

// metricRecords is the same data set as records to write to a store.
func metricRecords() []model.LogRecord {
	var recs []model.LogRecord
	for i, l := range metricLines() {
		recs = append(recs, model.LogRecord{ID: model.RecordID{byte(i + 1), 15}, Timestamp: base + int64(l.sec)*1e9,
			ObservedTimestamp: base, Service: l.service, Host: l.host, Level: l.level, Message: l.msg})
	}
	return recs
}

type metricLine struct {
	sec                  int
	service, host, level string
	msg                  string
}

func metricLines() []metricLine {
	lines := []metricLine{
		{10, "api", "h1", "info", "latency=1 took=100ms size=1KB"},
		{20, "api", "h1", "info", "latency=3 took=1s size=2KB"},
		{30, "api", "h1", "info", "latency=2 took=250ms size=512"},
		{40, "api", "h1", "info", "latency=6 took=2s size=1KiB"},
		{15, "api", "h2", "info", "latency=10 took=1m size=10B"},
		{35, "api", "h2", "info", "latency=abc took=zzz size=big"},
		{25, "db", "h1", "error", "no fields here"},
		{45, "db", "h1", "error", "not json either"},
	}
	for i, c := range []int{10, 20, 5, 15} {
		lines = append(lines, metricLine{10 * (i + 1), "ctr", "h3", "info", "c=" + strconv.Itoa(c)})
	}
	return lines
}

// render prints series as `{labels} v` (instant) or `{labels} t:v t:v`
// with t in seconds after base, in result order.
func render(series []Series, instant bool) []string {
	var out []string
	for _, s := range series {
		var b strings.Builder
		b.WriteString(s.Labels.String())
		for _, p := range s.Points {
			b.WriteByte(' ')
			if !instant {
				b.WriteString(strconv.FormatInt((p.T-base)/1e9, 10) + ":")
			}
			b.WriteString(strconv.FormatFloat(roundTo(p.V, 9), 'g', -1, 64))
		}
		out = append(out, b.String())
	}
	return out
}

func roundTo(v float64, digits int) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// TestMetricFunctions evaluates instant queries at base+60s (range windows
// (0s, 60s]) and range queries over the in-memory data set.
func TestMetricFunctions(t *testing.T) {
	eng := NewEngine(newMemReader(metricRows()))
	at := func(sec int) int64 { return base + int64(sec)*1e9 }
	run := func(q string, start, end, step int64) ([]Series, error) {
		expr, err := logql.ParseExpr(q)
		if err != nil {
			return nil, err
		}
		s, _, err := eng.EvalRange(context.Background(), expr, start, end, step)
		return s, err
	}
	f := func(q string, want ...string) {
		t.Helper()
		got, err := run(q, at(60), at(60), 1)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			return
		}
		if g := strings.Join(render(got, true), "\n"); g != strings.Join(want, "\n") {
			t.Errorf("%s\ngot\n%s\nwant\n%s", q, g, strings.Join(want, "\n"))
		}
	}
	fr := func(q string, startSec, endSec, stepSec int, want ...string) {
		t.Helper()
		got, err := run(q, at(startSec), at(endSec), int64(stepSec)*1e9)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			return
		}
		if g := strings.Join(render(got, false), "\n"); g != strings.Join(want, "\n") {
			t.Errorf("%s [%d..%d/%d]\ngot\n%s\nwant\n%s", q, startSec, endSec, stepSec, g, strings.Join(want, "\n"))
		}
	}
	fErr := func(q, wantErr string) {
		t.Helper()
		_, err := run(q, at(60), at(60), 1)
		var pe *paramError
		if err == nil || !strings.Contains(err.Error(), wantErr) || !errors.As(err, &pe) {
			t.Errorf("%s: got error %v; want a bad request containing %q", q, err, wantErr)
		}
	}
	h1 := `{service="api", host="h1"} | logfmt latency`
	h1s := `{host="h1", level="info", service="api"}`
	// Functions over unwrapped values: h1's latencies are 1, 3, 2, 6.
	f(`sum_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 12")
	f(`avg_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 3")
	f(`min_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 1")
	f(`max_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 6")
	f(`stdvar_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 3.5")         // (4+0+1+9)/4
	f(`stddev_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 1.870828693") // √3.5
	f(`quantile_over_time(0.5, `+h1+` | unwrap latency [1m])`, h1s+" 2.5")  // between 2 and 3
	f(`quantile_over_time(0.9, `+h1+` | unwrap latency [1m])`, h1s+" 5.1")  // 3·0.3 + 6·0.7
	f(`quantile_over_time(0, `+h1+` | unwrap latency [1m])`, h1s+" 1")
	f(`quantile_over_time(1.5, `+h1+` | unwrap latency [1m])`, h1s+" +Inf")
	f(`first_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 1")
	f(`last_over_time(`+h1+` | unwrap latency [1m])`, h1s+" 6")
	f(`rate(`+h1+` | unwrap latency [1m])`, h1s+" 0.2") // 12 / 60 s
	f(`absent_over_time(` + h1 + ` | unwrap latency [1m])`)
	// Conversions: seconds and bytes (KB = 1000, KiB = 1024).
	f(`sum_over_time({service="api", host="h1"} | logfmt took | unwrap duration(took) [1m])`, h1s+" 3.35")
	f(`sum_over_time({service="api", host="h1"} | logfmt took | unwrap duration_seconds(took) [1m])`, h1s+" 3.35")
	f(`sum_over_time({service="api", host="h1"} | logfmt size | unwrap bytes(size) [1m])`, h1s+" 4536")
	// A filter after unwrap sees the unwrapped label: 3 + 6.
	f(`sum_over_time(`+h1+` | unwrap latency | latency > 2 [1m])`, h1s+" 9")
	// A counter that reset once: increase 5 + 20 = 25 over 30 s of
	// samples, extrapolated 10 s back and 5 s forward: 37.5 / 60 s.
	f(`rate_counter({service="ctr"} | logfmt | unwrap c [1m])`, `{host="h3", level="info", service="ctr"} 0.625`)
	f(`rate_counter({service="ctr"} | logfmt | unwrap c [5s] offset 20s)`, `{host="h3", level="info", service="ctr"} 0`) // one sample

	// Conversion errors: the query fails unless __error__ is filtered.
	api := `{service="api"} | logfmt latency`
	fErr(`sum_over_time(`+api+` | unwrap latency [1m])`, `pipeline error: 'SampleExtractionErr'`)
	fErr(`max_over_time(`+api+` | unwrap latency [1m]) by (service)`, `__error__="SampleExtractionErr"`)
	f(`sum_over_time(`+api+` | unwrap latency | __error__="" [1m])`, h1s+" 12", `{host="h2", level="info", service="api"} 10`)
	f(`max_over_time(`+api+` | unwrap latency | __error__="" [1m]) by (service)`, `{service="api"} 10`)
	f(`avg_over_time(`+api+` | unwrap latency | __error__="" [1m]) without (host, level)`, `{service="api"} 4.4`) // 22 / 5
	// Lines without the label give no sample.
	f(`sum_over_time({service=~"api|db"} | logfmt latency | unwrap latency | __error__="" [1m])`, h1s+" 12", `{host="h2", level="info", service="api"} 10`)
	// Parser errors too.
	fErr(`count_over_time({service="db"} | json [1m])`, `pipeline error: 'JSONParserErr'`)
	f(`count_over_time({service="db"} | json | __error__="" [1m])`)
	f(`count_over_time({service="db"} | json | __error__="" [1m]) or vector(0)`, `{} 0`)

	// Counting, offset and absent.
	f(`count_over_time({service="api"}[1m])`, h1s+" 4", `{host="h2", level="info", service="api"} 2`)
	f(`count_over_time({service="api"}[1m] offset 30s)`, h1s+" 3", `{host="h2", level="info", service="api"} 1`) // (0, 30]
	f(`bytes_over_time({service="db"}[1m])`, `{host="h1", level="error", service="db"} 29`)                      // 14 + 15
	f(`bytes_rate({service="db"}[1m] offset 20s)`, `{host="h1", level="error", service="db"} 0.233333333`)       // 14 / 60
	f(`sum_over_time(`+h1+` | unwrap latency [20s] offset 20s)`, h1s+" 8")                                       // (20, 40]: 2 + 6
	f(`absent_over_time({service="api"}[1m])`)
	f(`absent_over_time({service="nope", host="h1"}[1m])`, `{host="h1", service="nope"} 1`)
	f(`absent_over_time({service="nope", host=~"h.*"}[1m])`, `{service="nope"} 1`)

	// Vector aggregations over the four series 4 (api/h1), 2 (api/h2),
	// 2 (db/h1), 4 (ctr/h3).
	all := `count_over_time({level=~".+"}[1m])`
	f(`sum(`+all+`)`, `{} 12`)
	f(`avg(`+all+`)`, `{} 3`)
	f(`min(`+all+`)`, `{} 2`)
	f(`max(`+all+`)`, `{} 4`)
	f(`count(`+all+`)`, `{} 4`)
	f(`stddev(`+all+`)`, `{} 1`)
	f(`stdvar(`+all+`)`, `{} 1`)
	f(`stdvar by (service) (`+all+`)`, `{service="api"} 1`, `{service="ctr"} 0`, `{service="db"} 0`)
	f(`sum by (host) (`+all+`)`, `{host="h1"} 6`, `{host="h2"} 2`, `{host="h3"} 4`)
	f(`sum without (level, service) (`+all+`)`, `{host="h1"} 6`, `{host="h2"} 2`, `{host="h3"} 4`)
	f(`topk(1, sum by (host) (`+all+`))`, `{host="h1"} 6`)
	f(`bottomk(1, sum by (host) (`+all+`))`, `{host="h2"} 2`)
	f(`sort(sum by (host) (`+all+`))`, `{host="h2"} 2`, `{host="h3"} 4`, `{host="h1"} 6`)
	f(`sort_desc(sum by (host) (`+all+`))`, `{host="h1"} 6`, `{host="h3"} 4`, `{host="h2"} 2`)

	// Binary operations with scalars (api: h1 4, h2 2).
	c := `count_over_time({service="api"}[1m])`
	h2s := `{host="h2", level="info", service="api"}`
	f(c+` / 2`, h1s+" 2", h2s+" 1")
	f(`2 * `+c, h1s+" 8", h2s+" 4")
	f(c+` - 1`, h1s+" 3", h2s+" 1")
	f(c+` -1`, h1s+" 3", h2s+" 1")
	f(c+` + 0.5`, h1s+" 4.5", h2s+" 2.5")
	f(c+` % 3`, h1s+" 1", h2s+" 2")
	f(c+` ^ 2`, h1s+" 16", h2s+" 4")
	f(`1 / (`+c+` - 2)`, h1s+" 0.5", h2s+" +Inf")
	f(c+` > 3`, h1s+" 4")
	f(`3 < `+c, h1s+" 4") // the vector's value, on either side
	f(c+` > bool 3`, h1s+" 1", h2s+" 0")
	f(c+` >= 4`, h1s+" 4")
	f(c+` <= 2`, h2s+" 2")
	f(c+` < bool 3`, h1s+" 0", h2s+" 1")
	f(c+` == 2`, h2s+" 2")
	f(c+` != 2`, h1s+" 4")
	f(c+` == bool 2`, h1s+" 0", h2s+" 1")
	f(`1 + 2 * 3`, `{} 7`)
	f(`2 ^ 3 ^ 2`, `{} 512`)
	f(`(10 - 4) / 4 % 1`, `{} 0.5`)
	f(`2 > bool 1`, `{} 1`)
	f(`2 <= bool 1`, `{} 0`)
	f(`vector(3)`, `{} 3`)
	f(`vector(3) * 2`, `{} 6`)
	f(`sum(rate({service="api"}[1m])) * 60`, `{} 6`)

	// Between vectors.
	f(c+` / `+`count_over_time({service="api"}[1m] offset 30s)`, h1s+" 1.333333333", h2s+" 2") // 4/3, 2/1
	f(c+` > bool `+`count_over_time({service="api"}[1m] offset 30s)`, h1s+" 1", h2s+" 1")
	f(c + ` - ` + `count_over_time({service="db"}[1m])`) // no label set in common
	hostSum := func(sel string) string { return `sum by (host) (count_over_time(` + sel + `[1m]))` }
	f(hostSum(`{service=~"api|db"}`)+` - on (host) `+hostSum(`{service="api"}`), `{host="h1"} 2`, `{host="h2"} 0`)
	f(c+` - ignoring (service, level) `+`count_over_time({service="db"}[1m])`, `{host="h1"} 2`)
	f(`count_over_time({service=~"api|db"}[1m]) / on (host) group_left `+hostSum(`{service=~"api|db"}`),
		`{host="h1", level="error", service="db"} 0.333333333`, h1s+" 0.666666667", h2s+" 1")
	f(hostSum(`{service=~"api|db"}`)+` / on (host) group_right count_over_time({service=~"api|db"}[1m])`,
		`{host="h1", level="error", service="db"} 3`, h1s+" 1.5", h2s+" 1")
	f(hostSum(`{service="api"}`)+` * on (host) group_left (level) count_over_time({service="db"}[1m])`, `{host="h1", level="error"} 8`)
	f(c+` and on (host) count_over_time({service="db"}[1m])`, h1s+" 4")
	f(c+` unless on (host) count_over_time({service="db"}[1m])`, h2s+" 2")
	f(`count_over_time({service="db"}[1m]) or on (host) `+c, `{host="h1", level="error", service="db"} 2`, h2s+" 2")
	f(c+` or vector(0)`, `{} 0`, h1s+" 4", h2s+" 2")
	f(`sum(count_over_time({service="nope"}[1m])) or vector(0)`, `{} 0`)
	fErr(`count_over_time({service=~"api|db"}[1m]) + on (host) count_over_time({service=~"api|db"}[1m])`, "found duplicate series for the match group")
	fErr(hostSum(`{service=~"api|db"}`)+` + on () count_over_time({service="db"}[1m])`, "multiple matches for labels")

	// A bound on the samples held in memory.
	small := NewEngine(newMemReader(metricRows()))
	small.maxSamples = 3
	expr, _ := logql.ParseExpr(`sum_over_time(` + h1 + ` | unwrap latency [1m])`)
	var pe *paramError
	if _, _, err := small.EvalRange(context.Background(), expr, at(60), at(60), 1); !errors.As(err, &pe) || !strings.Contains(err.Error(), "more than 3 samples") {
		t.Errorf("4 samples with a limit of 3: got %v; want a bad request about the limit", err)
	}

	// label_replace.
	f(`label_replace(`+c+`, "node", "n-$1", "host", "h(.*)")`,
		`{host="h1", level="info", node="n-1", service="api"} 4`, `{host="h2", level="info", node="n-2", service="api"} 2`)
	f(`label_replace(`+c+`, "node", "n-$1", "host", "x(.*)")`, h1s+" 4", h2s+" 2")
	f(`label_replace(`+c+`, "level", "", "level", ".*")`, `{host="h1", service="api"} 4`, `{host="h2", service="api"} 2`)
	fErr(`label_replace(`+c+`, "host", "same", "host", ".*")`, "same labelset")

	// Range queries: one value per step, each over its own window.
	fr(`sum_over_time(`+h1+` | unwrap latency [10s])`, 10, 40, 10, h1s+" 10:1 20:3 30:2 40:6")
	fr(`sum_over_time(`+h1+` | unwrap latency [10s])`, 15, 45, 15, h1s+" 15:1 30:2 45:6")
	fr(`first_over_time(`+h1+` | unwrap latency [20s])`, 20, 40, 20, h1s+" 20:1 40:2")
	fr(`last_over_time(`+h1+` | unwrap latency [20s])`, 20, 40, 20, h1s+" 20:3 40:6")
	fr(`max_over_time(`+h1+` | unwrap latency [20s] offset 10s)`, 30, 50, 10, h1s+" 30:3 40:3 50:6")
	fr(`count_over_time({service="api", host="h1"}[10s] offset 10s)`, 20, 60, 20, h1s+" 20:1 40:1")
	fr(`absent_over_time({service="api", host="h1"}[5s])`, 0, 50, 10, `{host="h1", service="api"} 0:1 50:1`)
	fr(`vector(1) + vector(1)`, 0, 20, 10, `{} 0:2 10:2 20:2`)
	fr(`count_over_time({service="api", host="h1"}[10s]) * 10 or vector(0)`, 0, 40, 20, `{} 0:0 20:0 40:0`, h1s+" 20:10 40:10")
}

// BenchmarkQuantileOverTime is quantile_over_time over an unwrapped label
// of 1M lines in one window, from the in-memory reader (the store's own
// read speed is measured by the store benchmarks).
func BenchmarkQuantileOverTime(b *testing.B) {
	const lines = 1_000_000
	rows := make([]storage.Row, lines)
	lbls := model.LabelsFromMap(map[string]string{"service": "api", "host": "h1"})
	for i := range rows {
		rows[i] = storage.Row{Timestamp: base + int64(i)*1e6, Labels: lbls,
			Message: fmt.Sprintf("level=info latency=%d.%03d path=/api/v1/query", i%977, i%1000)}
	}
	eng := NewEngine(newMemReader(rows))
	expr, err := logql.ParseExpr(`quantile_over_time(0.99, {service="api"} | logfmt latency | unwrap latency [20m])`)
	if err != nil {
		b.Fatal(err)
	}
	end := base + int64(lines)*1e6
	b.ReportAllocs()
	for b.Loop() {
		s, _, err := eng.EvalRange(context.Background(), expr, end, end, int64(time.Second))
		if err != nil || len(s) != 1 {
			b.Fatalf("got %d series, %v", len(s), err)
		}
	}
	b.ReportMetric(lines, "lines/op")
}
