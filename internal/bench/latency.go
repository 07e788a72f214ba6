package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// queryLatencies reports the latencies of three Loki queries over the
// total lines stored: a rare needle, a label selector and a
// case-insensitive filter, all in the service of the middle needle.
func (b *bencher) queryLatencies(ctx context.Context, total int) error {
	mid := b.lines / 100_000 / 2
	svc := fmt.Sprintf("bench-%d", (mid*100_000+50_000)%20)
	for _, q := range []struct{ name, q string }{
		{fmt.Sprintf("line filter `{service=%q} |= \"needle-%d\"` (rare), limit 100", svc, mid),
			fmt.Sprintf(`{service=%q} |= "needle-%d"`, svc, mid)},
		{fmt.Sprintf("label selector `{service=%q}`, limit 100, backward", svc), fmt.Sprintf(`{service=%q}`, svc)},
		{fmt.Sprintf("case-insensitive filter `{service=%q} |~ \"(?i)NEEDLE-%d\"`, limit 100", svc, mid),
			fmt.Sprintf(`{service=%q} |~ "(?i)NEEDLE-%d"`, svc, mid)},
	} {
		p50, p99, n, err := b.latency(ctx, q.q)
		if err != nil {
			return err
		}
		b.row(fmt.Sprintf("%s over %d lines: p50 / p99 (%d lines found)", q.name, total, n), fmt.Sprintf("%s / %s", p50, p99))
	}
	return nil
}

func (b *bencher) count(ctx context.Context, sel string) (int, error) {
	v := url.Values{"query": {fmt.Sprintf("sum(count_over_time(%s[2h]))", sel)}}
	resp, err := b.security().get(b.security().url(b.query, "/loki/api/v1/query?"+v.Encode()))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("count query: %v", err)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.Atoi(s)
}

func (b *bencher) latency(ctx context.Context, q string) (p50, p99 time.Duration, found int, err error) {
	now := time.Now()
	v := url.Values{"query": {q}, "limit": {"100"}, "start": {strconv.FormatInt(now.Add(-2*time.Hour).UnixNano(), 10)}, "end": {strconv.FormatInt(now.UnixNano(), 10)}}
	var ds []time.Duration
	for i := 0; i < b.queryRuns; i++ {
		t0 := time.Now()
		resp, err := b.security().get(b.security().url(b.query, "/loki/api/v1/query_range?"+v.Encode()))
		if err != nil {
			return 0, 0, 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close() // read to its end above
		ds = append(ds, time.Since(t0))
		if resp.StatusCode != 200 {
			return 0, 0, 0, fmt.Errorf("query %s: %d %s", q, resp.StatusCode, body)
		}
		var r struct {
			Data struct {
				Result []struct {
					Values [][2]string `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return 0, 0, 0, fmt.Errorf("query %s: %w", q, err)
		}
		found = 0
		for _, s := range r.Data.Result {
			found += len(s.Values)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	pct := func(p float64) time.Duration {
		return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(10 * time.Microsecond)
	}
	return pct(0.5), pct(0.99), found, nil
}

// traceQueryLatencies reports the p50 and p99 of two Jaeger API queries at
// base, runs times each: a trace by id (cycling through ids) and a
// service + tag search of the bench traces.
func traceQueryLatencies(row func(k, v string), base string, runs int, ids []string) error {
	return traceQueryLatenciesOver(securityOff, row, base, runs, ids)
}

// traceQueryLatenciesOver is traceQueryLatencies with the key and TLS of
// sec.
func traceQueryLatenciesOver(sec *security, row func(k, v string), base string, runs int, ids []string) error {
	for _, q := range []struct {
		name string
		path func(i int) string
	}{
		{"`/api/traces/{id}` p50 / p99", func(i int) string { return "/api/traces/" + ids[i%len(ids)] }},
		{"service + tag search, limit 20, p50 / p99", func(i int) string {
			return fmt.Sprintf("/api/traces?service=bench-%d&tags=%%7B%%22customer%%22%%3A%%22c-%d%%22%%7D&limit=20&lookback=1h", i%20, i%500)
		}},
	} {
		p50, p99, err := latency(sec, runs, func(i int) string { return base + q.path(i) })
		if err != nil {
			return err
		}
		row(q.name, fmt.Sprintf("%s / %s", p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond)))
	}
	return nil
}

// latency requests url(i) runs times and returns the p50 and p99.
func latency(sec *security, runs int, url func(i int) string) (time.Duration, time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		resp, err := sec.get(url(i))
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close() // read to its end above
		if resp.StatusCode != 200 {
			return 0, 0, fmt.Errorf("%s: %s", url(i), resp.Status)
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], nil
}
