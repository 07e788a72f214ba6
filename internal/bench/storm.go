package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/config"
)

// stormQueries are the heavy LogQL queries of `vigil bench query-storm`,
// each a full scan of the lines: a regular expression, logfmt with a
// label filter, and a rate by a parsed label.
var stormQueries = []string{
	`sum by (level) (count_over_time({service=~"bench-.*"} |~ "items/[0-9]+7 200" [5m]))`,
	`{service=~"bench-.*"} | logfmt | region="eu-west-2" |~ "user=4999[0-9] "`,
	`sum by (region) (rate({service=~"bench-.*"} | logfmt | level="error" | keep region [5m]))`,
}

// runQueryStorm is `vigil bench query-storm`.
func runQueryStorm(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("bench query-storm", "Load lines into `vigil all-in-one`, then, for each setting of the query limits, restart it on\n"+
		"the same data and run concurrent heavy LogQL queries while clients keep ingesting; report\n"+
		"peak RSS, query latencies and answers, and the ingestion rate before and during the storm.")
	lines := fs.Int("bench.lines", 2_000_000, "lines loaded before the storms")
	queries := fs.Int("bench.queries", 24, "concurrent query clients")
	rounds := fs.Int("bench.query-rounds", 1, "queries each client sends, one after the other")
	ingestClients := fs.Int("bench.ingest-clients", 2, "HTTP clients ingesting during the storm")
	settings := fs.String("bench.limits", "--query.max-concurrent=0 --query.max-bytes-scanned=0;",
		"settings compared, separated by ';': each the query-limit flags of one all-in-one (empty: the defaults)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vigil-bench-storm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bencher{lines: *lines, clients: 4, batch: 1000, intake: intakes["ndjson"], dir: dir, out: os.Stdout}
	if err := b.startChild(); err != nil {
		return err
	}
	if _, _, err := b.httpPhase(ctx); err != nil {
		stop(b.child)
		return err
	}
	stop(b.child)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(b.out, "# vigil bench query-storm: %d lines, %d concurrent clients × %d heavy LogQL queries, %d clients ingesting; %d cores (%s); load before: %s\n\n",
		*lines, *queries, *rounds, *ingestClients, runtime.NumCPU(), runtime.GOARCH, strings.TrimSpace(string(load)))
	fmt.Fprintf(b.out, "Queries, in turn: `%s`\n\n", strings.Join(stormQueries, "`, `"))
	fmt.Fprintf(b.out, "| query limits | peak RSS before / after the storm | query answers | latency of answered queries p50 / max | ingestion lines/s before / during the storm |\n|---|---|---|---|---|\n")
	next := *lines
	for _, s := range strings.Split(*settings, ";") {
		r, err := b.storm(ctx, strings.Fields(s), *queries, *rounds, *ingestClients, &next)
		if err != nil {
			return err
		}
		name := s
		if strings.TrimSpace(s) == "" {
			name = "defaults"
		}
		fmt.Fprintf(b.out, "| %s | %.0f MB / %.0f MB | %s | %s / %s | %.0f / %.0f |\n", name, float64(r.rssBefore)/1e6, float64(r.rssAfter)/1e6,
			r.answers, r.p50.Round(10*time.Millisecond), r.max.Round(10*time.Millisecond), r.ingestBefore, r.ingestDuring)
	}
	return nil
}

type stormResult struct {
	rssBefore, rssAfter        int64
	answers                    string
	p50, max                   time.Duration
	ingestBefore, ingestDuring float64
}

// storm restarts the all-in-one on b.dir with flags, measures ingestion
// alone, then runs the storm while ingestion goes on. next is the index of
// the next line to send.
func (b *bencher) storm(ctx context.Context, flags []string, queries, rounds, ingestClients int, next *int) (stormResult, error) {
	var r stormResult
	var err error
	b.child, err = startAllInOne(securityOff, b.query, append(append([]string{"--data-dir", b.dir, "--log.level", "error",
		"--collector.http.listen", b.collector, "--query.listen", b.query, "--query.timeout", "10m"}, noTraceReceivers...), flags...)...)
	if err != nil {
		return r, err
	}
	defer stop(b.child)
	if r.rssBefore, err = b.child.PeakRSS(); err != nil {
		return r, err
	}
	ingestCtx, stopIngest := context.WithCancel(ctx)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for c := range ingestClients {
		wg.Add(1)
		go func() { defer wg.Done(); b.ingestUntil(ingestCtx, *next+c*1e8, &sent) }()
	}
	defer func() { stopIngest(); wg.Wait(); *next += ingestClients * 1e8 }()
	time.Sleep(10 * time.Second)
	r.ingestBefore = float64(sent.Swap(0)) / 10

	start := time.Now()
	var mu sync.Mutex
	codes := map[int]int{}
	var took []time.Duration
	var qwg sync.WaitGroup
	for c := range queries {
		qwg.Add(1)
		go func() {
			defer qwg.Done()
			for i := range rounds {
				t0 := time.Now()
				code := b.stormQuery(ctx, stormQueries[(c+i)%len(stormQueries)])
				mu.Lock()
				codes[code]++
				if code == http.StatusOK {
					took = append(took, time.Since(t0))
				}
				mu.Unlock()
			}
		}()
	}
	qwg.Wait()
	r.ingestDuring = float64(sent.Load()) / time.Since(start).Seconds()
	if r.rssAfter, err = b.child.PeakRSS(); err != nil {
		return r, err
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		parts = append(parts, fmt.Sprintf("%d × %s", codes[c], statusName(c)))
	}
	r.answers = strings.Join(parts, ", ")
	if len(took) > 0 {
		slices.Sort(took)
		r.p50, r.max = took[len(took)/2], took[len(took)-1]
	}
	return r, nil
}

func statusName(code int) string {
	if code == 0 {
		return "failed"
	}
	return strconv.Itoa(code)
}

// stormQuery sends one range query over the last two hours and returns
// its status (0 when the request failed).
func (b *bencher) stormQuery(ctx context.Context, q string) int {
	now := time.Now()
	v := url.Values{"query": {q}, "limit": {"1000"}, "step": {"60"},
		"start": {strconv.FormatInt(now.Add(-2*time.Hour).UnixNano(), 10)}, "end": {strconv.FormatInt(now.UnixNano(), 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.query+"/loki/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench query-storm: %v\n", err)
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
		fmt.Fprintf(os.Stderr, "bench query-storm: %d %s\n", resp.StatusCode, body)
	}
	return resp.StatusCode
}

// ingestUntil sends batches of lines from line from on until ctx ends,
// counting the lines accepted in sent.
func (b *bencher) ingestUntil(ctx context.Context, from int, sent *atomic.Int64) {
	base := time.Now().Add(-10 * time.Minute).UnixNano()
	var body []byte
	for i := from; ctx.Err() == nil; i += b.batch {
		body = b.intake.encode(body[:0], i, i+b.batch, base)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.collector+b.intake.path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", b.intake.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close() // read to the end: nothing left to report
		if resp.StatusCode == b.intake.ok {
			sent.Add(int64(b.batch))
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
}
