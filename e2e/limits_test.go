//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTenantLimits runs all-in-one with two tenants: team-a with a low
// ingestion rate and max_streams 2, team-b without limits. team-a's flood
// gets 429s naming its limit while team-b's writes succeed and its reads
// answer; past max_streams a new stream of team-a is refused naming the
// limit, and its active streams are still accepted.
func TestTenantLimits(t *testing.T) {
	const keyA, keyB = "limits-team-a-5e1d", "limits-team-b-77ac"
	dir := t.TempDir()
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`tenants:
  team-a:
    keys: [{sha256: %q, scopes: [write, read]}]
    limits: {ingestion_rate: 20, ingestion_burst: 40, max_streams: 2, max_series: 3}
  team-b:
    keys: [{sha256: %q, scopes: [write, read]}]
`, sha(keyA), sha(keyB))), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", conf)
	logs := "http://" + p.collector + "/api/v1/logs"
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }
	lines := func(service string, n int, tag string) []byte {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"service":%q,"message":"%s %d"}`+"\n", service, tag, i)
		}
		return []byte(b.String())
	}

	// max_streams 2: two streams fill team-a's room
	for _, s := range []string{"a-one", "a-two"} {
		if code, _, body := authRequest(t, "POST", logs, lines(s, 1, "first"), bearer(keyA)...); code != 200 {
			t.Fatalf("team-a, stream %s: got %d %s", s, code, body)
		}
	}
	code, _, body := authRequest(t, "POST", logs, lines("a-three", 1, "new"), bearer(keyA)...)
	if code != 400 || !strings.Contains(body, "max_streams 2") || !strings.Contains(body, `tenant \"team-a\"`) {
		t.Fatalf("team-a, a third stream: got %d %s; want 400 naming max_streams 2 and the tenant", code, body)
	}
	if code, _, body := authRequest(t, "POST", logs, lines("a-one", 1, "again"), bearer(keyA)...); code != 200 {
		t.Fatalf("team-a, an active stream past the limit: got %d %s; want 200", code, body)
	}

	// team-a floods from 4 clients while team-b writes and reads.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var refusal string
	stop := time.Now().Add(3 * time.Second)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				code, h, body := authRequest(t, "POST", logs, lines("a-one", 10, fmt.Sprintf("flood %d-%d", c, i)), bearer(keyA)...)
				mu.Lock()
				codes[code]++
				if code == 429 && refusal == "" {
					refusal = h.Get("Retry-After") + " " + body
				}
				mu.Unlock()
			}
		}()
	}
	bOK := 0
	for i := 0; time.Now().Before(stop); i++ {
		code, _, body := authRequest(t, "POST", logs, lines("b-app", 5, fmt.Sprintf("b %d", i)), bearer(keyB)...)
		if code != 200 {
			t.Errorf("team-b write %d during team-a's flood: got %d %s", i, code, body)
		}
		bOK += 5
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	if codes[429] == 0 {
		t.Fatalf("team-a's flood: got %v; want 429s", codes)
	}
	if !strings.HasPrefix(refusal, "1 ") || !strings.Contains(refusal, "ingestion_rate 20") || !strings.Contains(refusal, "team-a") {
		t.Errorf("team-a's 429: Retry-After and body %q; want Retry-After 1 and the limit and tenant named", refusal)
	}
	t.Logf("team-a's flood: %v; team-b wrote %d lines, all accepted", codes, bOK)

	// team-b reads all its lines
	q := "http://" + p.query + "/loki/api/v1/query_range?limit=5000&query=" + strings.ReplaceAll(`{service="b-app"}`, `"`, "%22")
	eventually(t, 20*time.Second, "team-b's lines readable", func() (bool, string) {
		code, _, body := authRequest(t, "GET", q, nil, bearer(keyB)...)
		return code == 200 && strings.Count(body, `"b `) == bOK, fmt.Sprintf("%d, %d of %d lines", code, strings.Count(body, `"b `), bOK)
	})
	if got := metric(t, p.collector, "vigil_collector_limited_records_total", "tenant", "team-a", "reason", "ingestion_rate"); got == 0 {
		t.Error("vigil_collector_limited_records_total{tenant=team-a,reason=ingestion_rate} = 0")
	}
	if got := metric(t, p.collector, "vigil_collector_limited_records_total", "tenant", "team-b"); got != 0 {
		t.Errorf("vigil_collector_limited_records_total{tenant=team-b} = %v; want 0", got)
	}

	// max_series 3 caps team-a's span-derived series: spans of 6 services
	// each make 3 series and fold the rest into team-a's other; team-b,
	// without a cap of its own, gets all 6. (Sent after the flood, when
	// team-a's ingestion rate allows them again.)
	traces := func(tag string) []byte {
		var rs []string
		for i := range 6 {
			rs = append(rs, fmt.Sprintf(`{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"%s-svc%d"}}]},`+
				`"scopeSpans":[{"spans":[{"traceId":"%032x","spanId":"%016x","name":"op","kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}`,
				tag, i, i+1, i+1, time.Now().UnixNano(), time.Now().Add(time.Millisecond).UnixNano()))
		}
		return []byte(`{"resourceSpans":[` + strings.Join(rs, ",") + `]}`)
	}
	for key, tag := range map[string]string{keyA: "a", keyB: "b"} {
		eventually(t, 10*time.Second, "spans of "+tag+" accepted", func() (bool, string) {
			code, _, body := authRequest(t, "POST", "http://"+p.collector+"/v1/traces", traces(tag), append(bearer(key), "Content-Type", "application/json")...)
			return code == 200, fmt.Sprintf("%d %s", code, body)
		})
	}
	eventually(t, 20*time.Second, "team-a's span series capped at 3, team-b's not", func() (bool, string) {
		folded := metric(t, p.query, "vigil_spanmetrics_folded_spans_total", "reason", "tenant_series")
		var a, b int
		for i := range 6 {
			a += int(metric(t, p.query, "traces_span_metrics_calls_total", "service_name", fmt.Sprintf("a-svc%d", i), "vigil_tenant", "team-a"))
			b += int(metric(t, p.query, "traces_span_metrics_calls_total", "service_name", fmt.Sprintf("b-svc%d", i), "vigil_tenant", "team-b"))
		}
		other := metric(t, p.query, "traces_span_metrics_calls_total", "service_name", "other", "vigil_tenant", "team-a")
		return folded == 3 && a == 3 && other == 3 && b == 6, fmt.Sprintf("folded %v, team-a's services %d and other %v, team-b's services %d", folded, a, other, b)
	})
}

// BenchmarkStreamExplosion measures the case: 2 clients send lines
// of 20 active streams (1,000 a request, at least 200,000 lines) while an
// exploding client sends 200,000 lines with a new service on every line
// (1,000 a request). It reports the active streams' lines/s accepted, the
// exploder's lines/s answered, and the seconds until every accepted line
// is indexed: without the exploder (steady), with it and no limit
// (explosion), and with --collector.limits.max-streams=1000
// (explosion-limited). Each run starts its own all-in-one; run it once:
//
//	VIGIL_BINARY=/tmp/vigil go test -tags e2e -run '^$' -bench StreamExplosion -benchtime 1x ./e2e/
func BenchmarkStreamExplosion(b *testing.B) {
	for _, c := range []struct {
		name    string
		explode bool
		args    []string
	}{
		{"steady", false, nil},
		{"explosion", true, nil},
		{"explosion-limited", true, []string{"--collector.limits.max-streams=1000"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				streamExplosion(b, c.explode, c.args)
			}
		})
	}
}

func streamExplosion(b *testing.B, explode bool, args []string) {
	const minSteadyLines, batch, explodeLines = 200_000, 1000, 200_000
	p := startAllInOne(b, b.TempDir(), args...)
	logs := "http://" + p.collector + "/api/v1/logs"
	post := func(body []byte) (int, int) {
		resp, err := http.Post(logs, "application/x-ndjson", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Accepted int `json:"accepted"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r.Accepted
	}
	// the active streams exist before the explosion starts
	var warm []byte
	for i := range 20 {
		warm = fmt.Appendf(warm, `{"service":"bench-%d","level":"info","host":"h%d","message":"warm"}`+"\n", i, i%4)
	}
	if code, _ := post(warm); code != 200 {
		b.Fatalf("warm-up: got %d", code)
	}
	start := time.Now()
	var exploded atomic.Int64
	var explodeDone atomic.Bool
	explodeDone.Store(!explode)
	var explodeTook time.Duration
	if explode {
		go func() {
			defer explodeDone.Store(true)
			var body []byte
			for n := 0; n < explodeLines; n += batch {
				body = body[:0]
				for i := n; i < n+batch; i++ {
					body = fmt.Appendf(body, `{"service":"burst-%d","message":"line %d"}`+"\n", i, i)
				}
				_, acc := post(body)
				exploded.Add(int64(acc))
			}
			explodeTook = time.Since(start)
		}()
	}
	var next, sent atomic.Int64
	var steady sync.WaitGroup
	for range 2 {
		steady.Add(1)
		go func() {
			defer steady.Done()
			var body []byte
			for {
				from := int(next.Add(batch)) - batch
				if from >= minSteadyLines && explodeDone.Load() {
					return
				}
				body = body[:0]
				for i := from; i < from+batch; i++ {
					body = fmt.Appendf(body, `{"service":"bench-%d","level":"info","host":"h%d","message":"GET /api/v1/items/%d 200"}`+"\n", i%20, i%4, i)
				}
				for {
					code, _ := post(body)
					if code == 200 {
						break
					}
					if code != 429 {
						b.Errorf("steady client: got %d", code)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				sent.Add(batch)
			}
		}()
	}
	steady.Wait()
	accepted := time.Since(start)
	want := float64(20 + sent.Load() + exploded.Load())
	eventually(b, 15*time.Minute, "every accepted line indexed", func() (bool, string) {
		v := metric(b, p.collector, "vigil_ingester_indexed_records_total")
		return v >= want, fmt.Sprintf("%.0f of %.0f", v, want)
	})
	indexed := time.Since(start)
	b.ReportMetric(float64(sent.Load())/accepted.Seconds(), "steady-lines/s")
	b.ReportMetric(indexed.Seconds(), "s-to-indexed")
	b.ReportMetric(float64(exploded.Load()), "new-stream-lines")
	if explode {
		b.ReportMetric(explodeLines/explodeTook.Seconds(), "exploder-lines/s")
	}
}
