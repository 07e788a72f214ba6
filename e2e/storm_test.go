//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The heavy LogQL queries of `vigil bench query-storm`, each a full scan:
// a regular expression, logfmt with a label filter, a rate by a parsed
// label.
var stormQueries = []string{
	`sum by (level) (count_over_time({service=~"bench-.*"} |~ "items/[0-9]+7 200" [5m]))`,
	`{service=~"bench-.*"} | logfmt | region="eu-west-2" |~ "user=4999[0-9] "`,
	`sum by (region) (rate({service=~"bench-.*"} | logfmt | level="error" | keep region [5m]))`,
}

// Query limits of TestQueryStorm, and the per-query working set W of the
// memory budget docs/security.md states ("Query limits"): peak RSS ≈ the
// process ingesting + --query.max-concurrent × W.
const (
	stormMaxConcurrent = 1
	stormMaxQueued     = 2
	perQueryWorkingSet = 400 << 20
)

// TestQueryStorm is the query storm at a smaller scale: 600,000
// lines in all-in-one with --query.max-concurrent=1 --query.max-queued=2,
// 24 concurrent heavy LogQL queries while 4 clients keep ingesting.
// Checked: the queries past the queue are answered 429 with Retry-After
// and a body naming the limit, the others 200; the 4 clients' requests
// are answered during the storm, and every line they sent is stored; the
// process's peak RSS stays within the documented budget (its peak after
// loading with the same 4 clients, plus the working set of each query
// allowed to run at once); a query whose client goes away while it waits
// leaves the queue, and one whose client goes away while it runs stops
// and gives back its slot, where it would have run for minutes.
//
// Without the limits (--query.max-concurrent=0) the same storm took the
// process from 364 MB to 2,964 MB; with them it stayed at its 425 MB.
func TestQueryStorm(t *testing.T) {
	const loadLines, batch, ingestClients, queries = 600_000, 1000, 4, 24
	p := startAllInOne(t, t.TempDir(),
		"--query.max-concurrent", strconv.Itoa(stormMaxConcurrent), "--query.max-queued", strconv.Itoa(stormMaxQueued),
		// Queued queries wait for their turn instead of timing out, and
		// a query runs as long as it needs: only the queue's length
		// refuses, only the client's going away stops.
		"--query.queue-timeout", "10m", "--query.timeout", "30m")
	logs := "http://" + p.collector + "/api/v1/logs"
	base := time.Now().Add(-20 * time.Minute).UnixNano()
	// line i as `vigil bench logs` sends it, on host h
	line := func(dst []byte, i int, host string) []byte {
		return fmt.Appendf(dst, `{"timestamp":%d,"service":"bench-%d","level":"%s","host":%q,"message":"GET /api/v1/items/%d 200 %dms user=%d trace=%016x region=eu-west-%d"}`+"\n",
			base+int64(i)*1000, i%20, [...]string{"info", "info", "info", "warn", "error", "debug"}[i%6], host,
			i*7919%100000, i%997, i%50000, uint64(i)*0x9e3779b97f4a7c15, i%3)
	}
	post := func(body []byte) error {
		resp, err := http.Post(logs, "application/x-ndjson", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return nil
	}

	// Load: 4 clients, 1,000-line requests.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range ingestClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for from := int(next.Add(batch)) - batch; from < loadLines; from = int(next.Add(batch)) - batch {
				body = body[:0]
				for i := from; i < from+batch; i++ {
					body = line(body, i, fmt.Sprintf("h%d", i%8))
				}
				if err := post(body); err != nil {
					t.Errorf("loading lines %d-%d: %v", from, from+batch, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	eventually(t, time.Minute, "the loaded lines indexed", func() (bool, string) {
		v := metric(t, p.collector, "vigil_ingester_indexed_records_total")
		return v >= loadLines, fmt.Sprintf("%.0f of %d", v, loadLines)
	})
	rssLoaded, err := p.vigil.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}

	// 4 clients ingest, each on its own host label, until the storm is over.
	ingestCtx, stopIngest := context.WithCancel(context.Background())
	defer stopIngest()
	var storming atomic.Bool
	sent := make([]atomic.Int64, ingestClients)
	duringStorm := make([]atomic.Int64, ingestClients)
	for c := range ingestClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for i := loadLines + c*10_000_000; ingestCtx.Err() == nil; i += batch {
				body = body[:0]
				for j := i; j < i+batch; j++ {
					body = line(body, j, fmt.Sprintf("ingest-%d", c))
				}
				during := storming.Load()
				if err := post(body); err != nil {
					t.Errorf("ingesting client %d: %v", c, err)
					return
				}
				sent[c].Add(batch)
				if during && storming.Load() {
					duringStorm[c].Add(batch)
				}
			}
		}()
	}
	eventually(t, time.Minute, "every ingesting client under way", func() (bool, string) {
		for c := range sent {
			if sent[c].Load() == 0 {
				return false, fmt.Sprintf("client %d has sent nothing", c)
			}
		}
		return true, ""
	})

	// The storm.
	type answer struct {
		code       int
		retryAfter string
		body       string
	}
	answers := make([]answer, queries)
	storming.Store(true)
	var qwg sync.WaitGroup
	for c := range queries {
		qwg.Add(1)
		go func() {
			defer qwg.Done()
			code, h, body, err := stormQuery(context.Background(), p.query, stormQueries[c%len(stormQueries)])
			if err != nil {
				t.Errorf("query %d: %v", c, err)
				return
			}
			answers[c] = answer{code, h.Get("Retry-After"), body}
		}()
	}
	qwg.Wait()
	storming.Store(false)
	stopIngest()
	wg.Wait()
	rssPeak, err := p.vigil.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}

	codes := map[int]int{}
	for c, a := range answers {
		codes[a.code]++
		switch a.code {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			if a.retryAfter == "" || a.retryAfter == "0" {
				t.Errorf("query %d: 429 with Retry-After %q; want a delay", c, a.retryAfter)
			}
			if !strings.Contains(a.body, `"errorType":"too_many_requests"`) || !strings.Contains(a.body, "--query.max-queued=2") {
				t.Errorf("query %d: 429 %s; want Loki's error naming --query.max-queued=2", c, a.body)
			}
		default:
			t.Errorf("query %d: got %d %s; want 200 or 429", c, a.code, a.body)
		}
	}
	t.Logf("storm: %v; peak RSS %d MB after loading, %d MB after the storm", codes, rssLoaded>>20, rssPeak>>20)
	if codes[http.StatusOK] == 0 || codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("storm answers %v; want queries answered and the excess refused", codes)
	}
	if got := metric(t, p.query, "vigil_query_limit_refused_total", "reason", "queue_full"); got != float64(codes[http.StatusTooManyRequests]) {
		t.Errorf("vigil_query_limit_refused_total{reason=queue_full} = %v; want the %d 429s", got, codes[http.StatusTooManyRequests])
	}
	budget := rssLoaded + stormMaxConcurrent*perQueryWorkingSet
	if rssPeak > budget {
		t.Errorf("peak RSS %d MB; want at most %d MB (%d MB after loading + %d × %d MB)",
			rssPeak>>20, budget>>20, rssLoaded>>20, stormMaxConcurrent, perQueryWorkingSet>>20)
	}

	// Ingestion went on during the storm, and every line sent is stored.
	var total int64
	for c := range sent {
		if duringStorm[c].Load() == 0 {
			t.Errorf("ingesting client %d: no request answered during the storm", c)
		}
		total += sent[c].Load()
	}
	t.Logf("the 4 clients sent %d lines, %d of them answered during the storm", total,
		duringStorm[0].Load()+duringStorm[1].Load()+duringStorm[2].Load()+duringStorm[3].Load())
	count := `sum(count_over_time({service=~"bench-.*", host=~"ingest-.*"} [1h]))`
	eventually(t, 2*time.Minute, "every line sent during the storm stored", func() (bool, string) {
		code, _, body, err := stormQuery(context.Background(), p.query, count)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("%d %s %v", code, body, err)
		}
		return strings.Contains(body, fmt.Sprintf(`"%d"]`, total)), fmt.Sprintf("want %d: %s", total, body)
	})

	// Cancellation. The slow query's regular expression costs about 2 ms
	// a line (20,000 lines: 40 s): 20 minutes over these lines.
	slow := `{service=~"bench-.*"} |~ "(?:[a-z0-9 =/]{1,50}){1,20}[#%]"`
	run := func(ctx context.Context) <-chan error {
		done := make(chan error, 1)
		go func() {
			code, _, body, err := stormQuery(ctx, p.query, slow)
			if err == nil {
				err = fmt.Errorf("answered %d %s", code, body)
			}
			done <- err
		}()
		return done
	}
	gauge := func(name string, want float64) func() (bool, string) {
		return func() (bool, string) {
			v := metric(t, p.query, name)
			return v == want, fmt.Sprintf("%s = %v, want %v", name, v, want)
		}
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	doneA := run(ctxA)
	eventually(t, 30*time.Second, "the slow query running", gauge("vigil_query_limit_in_flight", 1))
	// A second one waits in the queue; its client goes away.
	abandoned := metric(t, p.query, "vigil_query_limit_abandoned_total")
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	doneB := run(ctxB)
	eventually(t, 30*time.Second, "a second slow query queued", gauge("vigil_query_limit_queued", 1))
	cancelB()
	if err := <-doneB; !errors.Is(err, context.Canceled) {
		t.Fatalf("the queued query: %v; want it still waiting when its client went away", err)
	}
	eventually(t, 30*time.Second, "the queued query out of the queue", gauge("vigil_query_limit_abandoned_total", abandoned+1))
	eventually(t, 30*time.Second, "the queue empty", gauge("vigil_query_limit_queued", 0))
	// The running one's client goes away: the query stops and its slot is free.
	cancelA()
	if err := <-doneA; !errors.Is(err, context.Canceled) {
		t.Fatalf("the slow query: %v; want it still running when its client went away", err)
	}
	cancelled := time.Now()
	eventually(t, 90*time.Second, "the cancelled query stopped", gauge("vigil_query_limit_in_flight", 0))
	t.Logf("the cancelled query gave back its slot %s after its client went away", time.Since(cancelled).Round(100*time.Millisecond))
	code, _, body, err := stormQuery(context.Background(), p.query, `{host="ingest-0"}`)
	if err != nil || code != http.StatusOK {
		t.Errorf("a query after the cancelled one: %d %s %v; want 200", code, body, err)
	}
}

// stormQuery sends a Loki range query over the last hour to addr and
// returns the answer.
func stormQuery(ctx context.Context, addr, q string) (int, http.Header, string, error) {
	now := time.Now()
	v := url.Values{"query": {q}, "limit": {"1000"}, "step": {"60"},
		"start": {strconv.FormatInt(now.Add(-time.Hour).UnixNano(), 10)}, "end": {strconv.FormatInt(now.UnixNano(), 10)}}
	path := "/loki/api/v1/query_range?"
	if strings.HasPrefix(q, "sum(") {
		v = url.Values{"query": {q}, "time": {strconv.FormatInt(now.UnixNano(), 10)}}
		path = "/loki/api/v1/query?"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path+v.Encode(), nil)
	if err != nil {
		return 0, nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}
