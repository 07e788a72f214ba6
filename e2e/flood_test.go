//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFloodThroughTheStore floods all-in-one as issue "the stability
// toolkit" describes, end to end: one service (grade 4) sends ten times
// its fair budget of log lines from eight clients while a grade-1 service
// sends 20 lines and 5 spans every 100 ms. Checked: every line and span of
// the grade-1 service is answered 200 and becomes queryable; the flooding
// service is answered 429 with Retry-After; every flooding line answered
// 200 is stored, none twice. Reported (t.Log, docs/BENCHMARKS.md), not
// asserted: the grade-1 lines' latency from request to queryable, without
// and with the flood.
func TestFloodThroughTheStore(t *testing.T) {
	const budget = 2000 // lines per second per service
	p := startAllInOne(t, t.TempDir(), "--collector.limits.service-rate", fmt.Sprint(budget),
		"--collector.overload.max-inflight", "4")

	var seq atomic.Int64
	var mu sync.Mutex
	sent := map[string]time.Time{} // grade-1 line id → when its request was answered
	steady := func(until time.Time) {
		for time.Now().Before(until) {
			var b strings.Builder
			var ids []string
			for range 20 {
				id := fmt.Sprintf("pay-%07d", seq.Add(1))
				ids = append(ids, id)
				fmt.Fprintf(&b, `{"service":"pay","grade":1,"level":"info","message":"charged id=%s"}`+"\n", id)
			}
			t0 := time.Now()
			if code, body := p.post("/api/v1/logs", "application/x-ndjson", []byte(b.String())); code != 200 {
				t.Errorf("grade-1 lines: %d %s", code, body)
			}
			mu.Lock()
			for _, id := range ids {
				sent[id] = t0
			}
			mu.Unlock()
			traceID := fmt.Sprintf("%032x", seq.Add(1))
			if code, body := p.post("/v1/traces", "application/json", []byte(floodSpans(traceID))); code != 200 {
				t.Errorf("grade-1 spans: %d %s", code, body)
			}
			mu.Lock()
			sent["trace:"+traceID] = t0
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}
	seen := map[string]time.Time{}
	watch := func(until time.Time) {
		for time.Now().Before(until) {
			now := time.Now()
			for _, s := range p.streams(`{service="pay"}`, 5000) {
				for _, v := range s.Values {
					id := v[1][strings.LastIndex(v[1], "=")+1:]
					if _, ok := seen[id]; !ok {
						seen[id] = now
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	latencies := func(from, to time.Time) []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		var out []time.Duration
		for id, at := range sent {
			if at.Before(from) || !at.Before(to) || strings.HasPrefix(id, "trace:") {
				continue
			}
			if s, ok := seen[id]; ok {
				out = append(out, s.Sub(at))
			}
		}
		slices.Sort(out)
		return out
	}

	// Without the flood, then with it.
	baseFrom := time.Now()
	baseTo := baseFrom.Add(3 * time.Second)
	go steady(baseTo)
	watch(baseTo.Add(time.Second))

	var accepted sync.Map // flooding line id → true
	var offered, refused, noRetry, other atomic.Int64
	floodFrom := time.Now()
	floodTo := floodFrom.Add(5 * time.Second)
	var flood sync.WaitGroup
	for c := range 8 {
		flood.Add(1)
		go func() {
			defer flood.Done()
			// 8 clients × 50 lines every 20 ms = 20,000 lines/s, ten budgets.
			for n := 0; time.Now().Before(floodTo); n++ {
				var b strings.Builder
				var ids []string
				for i := range 50 {
					id := fmt.Sprintf("spam-%d-%05d-%02d", c, n, i)
					ids = append(ids, id)
					fmt.Fprintf(&b, `{"service":"spam","level":"info","message":"noise id=%s"}`+"\n", id)
				}
				offered.Add(50)
				resp, err := httpPost("http://"+p.collector+"/api/v1/logs", []byte(b.String()))
				switch {
				case err != nil:
					other.Add(1)
				case resp.StatusCode == http.StatusOK:
					for _, id := range ids {
						accepted.Store(id, true)
					}
				case resp.StatusCode == http.StatusTooManyRequests:
					refused.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						noRetry.Add(1)
					}
				default:
					other.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	go steady(floodTo)
	watch(floodTo.Add(time.Second))
	flood.Wait()

	// Every grade-1 line and trace is stored.
	mu.Lock()
	var traces []string
	for id := range sent {
		if strings.HasPrefix(id, "trace:") {
			traces = append(traces, strings.TrimPrefix(id, "trace:"))
		}
	}
	wantLines := len(sent) - len(traces)
	mu.Unlock()
	eventually(t, 60*time.Second, "every grade-1 line queryable", func() (bool, string) {
		watch(time.Now().Add(time.Millisecond))
		return len(seen) == wantLines, fmt.Sprintf("%d of %d lines", len(seen), wantLines)
	})
	for _, id := range traces {
		p.getTrace(id, 5)
	}
	if refused.Load() == 0 || noRetry.Load() != 0 || other.Load() != 0 {
		t.Errorf("flood: %d requests answered 429 (%d without Retry-After), %d otherwise; want 429s with Retry-After only",
			refused.Load(), noRetry.Load(), other.Load())
	}
	// Every flooding line answered 200 is stored, once.
	var want int
	accepted.Range(func(_, _ any) bool { want++; return true })
	eventually(t, 60*time.Second, "every accepted flooding line stored once", func() (bool, string) {
		n := p.countOverDay(`{service="spam"}`)
		return n == want, fmt.Sprintf("%d stored of %d accepted", n, want)
	})
	base, during := latencies(baseFrom, baseTo), latencies(floodFrom, floodTo)
	q := func(d []time.Duration, f float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[int(f*float64(len(d)-1))]
	}
	t.Logf("grade-1 lines, request to queryable: without the flood p50 %v p99 %v (%d lines); with it p50 %v p99 %v (%d lines)",
		q(base, .5), q(base, .99), len(base), q(during, .5), q(during, .99), len(during))
	t.Logf("flood: %d lines offered, %d accepted and stored, %d requests answered 429", offered.Load(), want, refused.Load())
}

// floodSpans is an OTLP/JSON export request of five spans of the grade-1
// service "pay" in the trace traceID.
func floodSpans(traceID string) string {
	now := time.Now().UnixNano()
	var spans []string
	for i := 1; i <= 5; i++ {
		parent := ""
		if i > 1 {
			parent = fmt.Sprintf(`"parentSpanId":"%016x",`, 1)
		}
		spans = append(spans, fmt.Sprintf(`{"traceId":%q,"spanId":"%016x",%s"name":"charge","kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}`,
			traceID, i, parent, now, now+int64(i)*int64(time.Millisecond)))
	}
	return `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"pay"}},` +
		`{"key":"vigil.grade","value":{"intValue":"1"}}]},"scopeSpans":[{"spans":[` + strings.Join(spans, ",") + `]}]}]}`
}

// countOverDay counts the lines of a log query over the last day with
// count_over_time, duplicates included.
func (p *proc) countOverDay(q string) int {
	p.t.Helper()
	v := url.Values{"query": {"sum(count_over_time(" + q + "[1d]))"}, "time": {fmt.Sprint(time.Now().Add(time.Minute).UnixNano())}}
	code, body, lr := p.get("/loki/api/v1/query?" + v.Encode())
	if code != 200 {
		p.t.Fatalf("count %s: %d %s", q, code, body)
	}
	var vec []struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(lr.Data.Result, &vec); err != nil {
		p.t.Fatalf("count %s: %v: %s", q, err, body)
	}
	if len(vec) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(fmt.Sprint(vec[0].Value[1]))
	return n
}
