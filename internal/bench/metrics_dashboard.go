package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// dashQuery is one request Grafana sends when it draws the dashboard: a
// panel's query_range, or a variable's label values.
type dashQuery struct {
	title string
	expr  string // PromQL, variables substituted
	// label is set for a variable's label_values(match, label): Grafana
	// asks /api/v1/label/<label>/values?match[]=expr.
	label string
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// dashboardQueries reads the generated dashboard JSON and returns the
// requests Grafana makes with the variables at their defaults: the custom
// variables' current values, "All" (allValue) for the others.
func dashboardQueries(data []byte) ([]dashQuery, error) {
	var d struct {
		Templating struct {
			List []struct {
				Type, Name, Query, AllValue string
				IncludeAll                  bool
				Current                     struct {
					Value any `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("dashboard JSON: %w", err)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		switch cur := v.Current.Value.(type) {
		case string:
			vars[v.Name] = cur
		case []any:
			if len(cur) == 1 && cur[0] == "$__all" && v.IncludeAll {
				vars[v.Name] = v.AllValue
			} else {
				var vals []string
				for _, c := range cur {
					vals = append(vals, fmt.Sprint(c))
				}
				vars[v.Name] = "(" + strings.Join(vals, "|") + ")"
			}
		}
	}
	// Longest names first, so that $service is not taken for $s….
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	subst := func(s string) string {
		for _, n := range names {
			s = strings.ReplaceAll(s, "${"+n+"}", vars[n])
			s = strings.ReplaceAll(s, "$"+n, vars[n])
		}
		return s
	}
	var qs []dashQuery
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(subst(v.Query))
		if m == nil {
			return nil, fmt.Errorf("dashboard variable %s: query %q is not label_values(selector, label)", v.Name, v.Query)
		}
		qs = append(qs, dashQuery{title: "variable " + v.Name, expr: m[1], label: m[2]})
	}
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, t := range p.Targets {
				if t.Expr != "" {
					qs = append(qs, dashQuery{title: p.Title, expr: subst(t.Expr)})
				}
			}
		}
	}
	walk(d.Panels)
	for _, q := range qs {
		if strings.Contains(q.expr, "$") {
			return nil, fmt.Errorf("dashboard query %q of %q: a variable is left", q.expr, q.title)
		}
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("dashboard JSON: no queries")
	}
	return qs, nil
}

type dashPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

// grafanaStep is the step Grafana's Prometheus data source sends for a
// time range on a panel about 1,000 pixels wide: range/1000 rounded to a
// round interval as Grafana rounds it (3.6s → 5s, 21.6s → 20s), never
// under the data source's scrape interval (15s by default).
func grafanaStep(rng time.Duration) time.Duration {
	iv := rng / 1000
	for _, r := range []struct{ under, step time.Duration }{
		{7500 * time.Millisecond, 5 * time.Second}, {12500 * time.Millisecond, 10 * time.Second},
		{17500 * time.Millisecond, 15 * time.Second}, {25 * time.Second, 20 * time.Second},
		{45 * time.Second, 30 * time.Second}, {90 * time.Second, time.Minute},
		{210 * time.Second, 2 * time.Minute}, {450 * time.Second, 5 * time.Minute},
	} {
		if iv < r.under {
			return max(r.step, 15*time.Second)
		}
	}
	return 10 * time.Minute
}

// request sends q over [now-rng, now] as Grafana does (POST form, start and
// end aligned to the step) and returns the time to the whole response.
func (q dashQuery) request(c *http.Client, addr string, rng time.Duration, now time.Time) (time.Duration, error) {
	step := grafanaStep(rng)
	end := now.Truncate(step)
	start := end.Add(-rng)
	var u string
	form := url.Values{"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}}
	if q.label != "" {
		u = "http://" + addr + "/api/v1/label/" + q.label + "/values"
		form.Set("match[]", q.expr)
		u += "?" + form.Encode()
	} else {
		u = "http://" + addr + "/api/v1/query_range"
		form.Set("query", q.expr)
		form.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	}
	t0 := time.Now()
	var resp *http.Response
	var err error
	if q.label != "" {
		resp, err = c.Get(u)
	} else {
		resp, err = c.PostForm(u, form)
	}
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read to the end; a read error is err
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s %s", q.expr, resp.Status, body)
	}
	return d, nil
}

// resultSeries counts the series q returns over the last rng.
func (q dashQuery) resultSeries(addr string, rng time.Duration) (int, error) {
	if q.label != "" {
		return 0, nil
	}
	step := grafanaStep(rng)
	end := time.Now().Truncate(step)
	resp, err := http.PostForm("http://"+addr+"/api/v1/query_range", url.Values{"query": {q.expr},
		"start": {strconv.FormatInt(end.Add(-rng).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	return len(r.Data.Result), err
}

// latencies is p50 and p99 of each dashboard query over rng, runs times,
// then of the whole dashboard's refresh (every query, six at a time, as a
// browser does).
type latencies struct {
	perQuery         [][2]time.Duration // by query index
	refresh          [2]time.Duration
	series           []int // series each query returns
	refreshQueries   int
	rangeDur, stepOf time.Duration
}

func measureDashboard(addr string, qs []dashQuery, rng time.Duration, runs int) (*latencies, error) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 6}}
	l := &latencies{rangeDur: rng, stepOf: grafanaStep(rng), refreshQueries: len(qs)}
	for _, q := range qs {
		n, err := q.resultSeries(addr, rng)
		if err != nil {
			return nil, err
		}
		l.series = append(l.series, n)
		var ds []time.Duration
		for range runs {
			d, err := q.request(c, addr, rng, time.Now())
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		l.perQuery = append(l.perQuery, pcts(ds))
	}
	var ds []time.Duration
	for range runs {
		t0, now := time.Now(), time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 6)
		errs := make(chan error, len(qs))
		for _, q := range qs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := q.request(c, addr, rng, now); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(t0))
	}
	l.refresh = pcts(ds)
	return l, nil
}

// pcts returns the p50 and p99 of ds.
func pcts(ds []time.Duration) [2]time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return [2]time.Duration{ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]}
}

// backfill remote-writes the history of the recorded series the dashboard
// reads, one sample a minute (the rules' evaluation interval) from
// end-history to end, oldest first: the dashboard then draws a full range
// instead of the minutes the benchmark ran. It must run before the first
// scrape, while nothing newer is in the head.
func backfill(addr string, qs []dashQuery, shape metricsShape, end time.Time, history time.Duration) (int, error) {
	var series [][]prompb.Label
	seen := map[string]bool{}
	for _, q := range qs {
		name, _, _ := strings.Cut(q.expr, "{")
		name = strings.TrimSpace(name)
		if seen[name] || !strings.Contains(name, ":") {
			continue
		}
		seen[name] = true
		level, _, _ := strings.Cut(name, ":")
		sets := map[string][]prompb.Label{}
		for t := 0; t < shape.targets; t++ {
			svc, grade, dc := shape.service(t)
			ls := []prompb.Label{{Name: "__name__", Value: name}}
			if level == "service_grade_dc" {
				ls = append(ls, prompb.Label{Name: "dc", Value: dc})
			}
			ls = append(ls, prompb.Label{Name: "grade", Value: grade})
			if level != "grade" {
				ls = append(ls, prompb.Label{Name: "service", Value: svc})
			}
			sets[fmt.Sprint(ls)] = ls
		}
		for _, ls := range sets {
			series = append(series, ls)
		}
	}
	end = end.Truncate(time.Minute)
	samples := 0
	for from := end.Add(-history); !from.After(end); from = from.Add(30 * time.Minute) {
		ts := make([]prompb.TimeSeries, len(series))
		for i, ls := range series {
			ts[i].Labels = ls
			for t := from; t.Before(from.Add(30*time.Minute)) && !t.After(end); t = t.Add(time.Minute) {
				ts[i].Samples = append(ts[i].Samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: float64(i%97) + float64(t.Unix()%600)/600})
				samples++
			}
		}
		m, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, m)))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close() // read to the end: nothing left to report
		if resp.StatusCode/100 != 2 {
			return 0, fmt.Errorf("backfill: remote write: %s %s", resp.Status, body)
		}
	}
	return samples, nil
}

// readDashboard reads the dashboard file.
func readDashboard(path string) ([]dashQuery, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the dashboard file the operator named
	if err != nil {
		return nil, fmt.Errorf("--bench.dashboard-file: %w (run from the repository's root, or point it at deploy/grafana/dashboards/golden-signals.json)", err)
	}
	return dashboardQueries(data)
}
