//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Keys of TestKeyRotationWhileWriting: K1 is replaced by K2 while the
// clients write; the reader's key stays.
const (
	rotK1     = "team-a-k1-0c5e9d7a41b2"
	rotK2     = "team-a-k2-f3a8b61e07d9"
	rotReader = "team-a-reader-5b17c2"
)

// rotationKey is the key the clients of the rotation test send: a client's
// configuration that an operator changes while it runs.
type rotationKey struct{ cur atomic.Value }

func (k *rotationKey) get() string  { return k.cur.Load().(string) }
func (k *rotationKey) set(s string) { k.cur.Store(s) }

// GetRequestMetadata makes the key gRPC per-RPC credentials, read on
// every call, as token sources do.
func (k *rotationKey) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + k.get()}, nil
}

func (k *rotationKey) RequireTransportSecurity() bool { return false }

// rotationAnswers counts what the clients were answered: accepted requests
// per writer, retries by reason, and every 401 with the key sent and when
// it arrived.
type rotationAnswers struct {
	mu       sync.Mutex
	accepted map[int]int // by writer; writer -1 is the OTLP exporter
	retries  map[string]int
	refused  []refusal
}

type refusal struct {
	key string
	at  time.Time
	who string
}

func (a *rotationAnswers) ok(writer int) {
	a.mu.Lock()
	a.accepted[writer]++
	a.mu.Unlock()
}

func (a *rotationAnswers) retry(reason string) {
	a.mu.Lock()
	a.retries[reason]++
	a.mu.Unlock()
}

func (a *rotationAnswers) unauthorized(who, key string) {
	a.mu.Lock()
	a.refused = append(a.refused, refusal{key: key, at: time.Now(), who: who})
	a.retries["401"]++
	a.mu.Unlock()
}

// snapshot returns the accepted requests of each writer.
func (a *rotationAnswers) snapshot() map[int]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[int]int, len(a.accepted))
	for k, v := range a.accepted {
		m[k] = v
	}
	return m
}

// TestKeyRotationWhileWriting rotates a tenant's key by editing
// --auth.config while three HTTP clients post numbered log lines and an
// OpenTelemetry exporter sends traces over OTLP/gRPC: the file gets K2
// beside K1, the clients move to K2, the file drops K1; one straggler keeps
// K1 until it is refused. Each client resends a request that was refused
// (401 once K1 is gone, 429, 5xx) until it is accepted, as real shippers
// do. The daemon is never restarted, and every line and every span is found
// afterwards.
func TestKeyRotationWhileWriting(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "auth.yaml")
	authFile := func(keys ...string) string {
		var b strings.Builder
		b.WriteString("tenants:\n  team-a:\n    keys:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "      - sha256: %q\n        scopes: [write, read]\n", sha(k))
		}
		fmt.Fprintf(&b, "      - sha256: %q\n        scopes: [read]\n", sha(rotReader))
		return b.String()
	}
	// writeAtomically replaces the file as an operator or a secret manager
	// does: the daemon sees the old file or the new one, never a part.
	writeAtomically := func(content string) time.Time {
		tmp := conf + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	writeAtomically(authFile(rotK1))
	// The lines are read back in one query: allow more than the default
	// 5,000 lines of one log query.
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", conf, "--query.max-entries", "100000")
	pid := p.vigil.Pid()
	started := metric(t, p.query, "process_start_time_seconds")
	reloads := func() float64 { return metric(t, p.query, "vigil_auth_config_reloads_total", "result", "success") }
	reloads0 := reloads()

	key := &rotationKey{}
	key.set(rotK1)
	answers := &rotationAnswers{accepted: map[int]int{}, retries: map[string]int{}}
	stop := make(chan struct{})
	const (
		writers      = 3
		linesPerPost = 10
		maxPosts     = 2000 // per writer: bounds the test if a phase never ends
		maxTraces    = 1000
	)
	sent := make([]int, writers) // lines each writer had accepted
	var traceIDs []string
	var wg sync.WaitGroup
	errc := make(chan error, writers+1)
	logsURL := "http://" + p.collector + "/api/v1/logs"
	client := &http.Client{Timeout: 30 * time.Second}

	// post sends body until it is accepted. Writers 0 and 1 send the key
	// of the clients' configuration, which moves to K2 before K1 is
	// removed; writer 2 is a straggler that keeps K1 until it is refused,
	// then takes the configuration's key.
	const straggler = 2
	post := func(w int, body []byte, own *string) error {
		for attempt := 0; ; attempt++ {
			if attempt > 200 {
				return fmt.Errorf("writer %d: a request still refused after 200 attempts", w)
			}
			k := key.get()
			if own != nil {
				k = *own
			}
			req, _ := http.NewRequest("POST", logsURL, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-ndjson")
			req.Header.Set("Authorization", "Bearer "+k)
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("writer %d: %v", w, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				return nil
			case resp.StatusCode == 401:
				answers.unauthorized(fmt.Sprintf("writer %d", w), k)
				if own != nil {
					*own = key.get()
				}
			case resp.StatusCode == 429 || resp.StatusCode >= 500:
				answers.retry(fmt.Sprint(resp.StatusCode))
			default:
				return fmt.Errorf("writer %d: %d %s", w, resp.StatusCode, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var body []byte
			var own *string
			if w == straggler {
				k := rotK1
				own = &k
			}
			for n := 0; n < maxPosts*linesPerPost; n += linesPerPost {
				select {
				case <-stop:
					return
				default:
				}
				body = body[:0]
				for i := n; i < n+linesPerPost; i++ {
					body = fmt.Appendf(body, `{"service":"rotation-e2e","level":"info","message":"writer=%d line=%d"}`+"\n", w, i)
				}
				if err := post(w, body, own); err != nil {
					errc <- err
					return
				}
				sent[w] = n + linesPerPost
				answers.ok(w)
				time.Sleep(10 * time.Millisecond) // a steady client, not a flood
			}
		}(w)
	}

	// One OpenTelemetry exporter over OTLP/gRPC, its key read on every
	// call; a refused export is sent again.
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(p.otlpGRPC), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithDialOption(grpc.WithPerRPCCredentials(key)),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer exp.Shutdown(context.Background())
		res := resource.NewSchemaless(attribute.String("service.name", "rotation-e2e"))
		for n := 1; n <= maxTraces; n++ {
			select {
			case <-stop:
				return
			default:
			}
			tid := trace.TraceID{0x70, 0x7a, byte(n >> 8), byte(n)}
			root := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
			child := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
			now := time.Now()
			spans := tracetest.SpanStubs{
				{Name: "GET /rotate", SpanContext: root, StartTime: now.Add(-2 * time.Millisecond), EndTime: now, Resource: res},
				{Name: "query", SpanContext: child, Parent: root, StartTime: now.Add(-time.Millisecond), EndTime: now, Resource: res},
			}.Snapshots()
			for attempt := 0; ; attempt++ {
				if attempt > 200 {
					errc <- fmt.Errorf("OTLP exporter: trace %d still refused after 200 attempts", n)
					return
				}
				k := key.get()
				err := exp.ExportSpans(context.Background(), spans)
				if err == nil {
					break
				}
				if strings.Contains(err.Error(), "Unauthenticated") {
					answers.unauthorized("OTLP exporter", k)
				} else {
					answers.retry("grpc: " + err.Error())
				}
				time.Sleep(20 * time.Millisecond)
			}
			traceIDs = append(traceIDs, tid.String())
			answers.ok(-1)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// waitWrites waits until every client had n more requests accepted,
	// so that each step of the rotation happens while they all write.
	waitWrites := func(what string, n int) {
		t.Helper()
		from := answers.snapshot()
		eventually(t, 30*time.Second, what, func() (bool, string) {
			now := answers.snapshot()
			for w := -1; w < writers; w++ {
				if now[w]-from[w] < n {
					return false, fmt.Sprintf("accepted requests before %v, now %v", from, now)
				}
			}
			return true, ""
		})
	}
	probe := func(method, url, k string) int {
		code, _, _ := authRequest(t, method, url, []byte(`{"service":"rotation-probe","message":"probe"}`), "Authorization", "Bearer "+k)
		return code
	}
	queryURL := "http://" + p.query + "/loki/api/v1/labels"

	waitWrites("writes with K1", 10)
	// Step 1: K2 beside K1. Clients move to K2 once the daemon took it.
	writeAtomically(authFile(rotK1, rotK2))
	eventually(t, 20*time.Second, "K2 accepted after the file gained it", func() (bool, string) {
		c := probe("GET", queryURL, rotK2)
		return c == 200, fmt.Sprint(c)
	})
	waitWrites("writes with K1 after K2 was added", 5)
	key.set(rotK2)
	waitWrites("writes with K2 beside K1", 10)
	// Step 2: K1 removed.
	removed := writeAtomically(authFile(rotK2))
	eventually(t, 20*time.Second, "K1 refused after its removal", func() (bool, string) {
		c := probe("GET", queryURL, rotK1)
		return c == 401, fmt.Sprint(c)
	})
	waitWrites("writes with K2 alone", 10)
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The daemon is the one started: same process, same start time.
	if !p.vigil.Running() || p.vigil.Pid() != pid {
		t.Fatalf("vigil restarted: pid %d → %d, running %v", pid, p.vigil.Pid(), p.vigil.Running())
	}
	if now := metric(t, p.query, "process_start_time_seconds"); now != started {
		t.Errorf("process_start_time_seconds: %v → %v; want unchanged (no restart)", started, now)
	}
	if v := metric(t, p.query, "vigil_auth_config_last_reload_successful"); v != 1 {
		t.Errorf("vigil_auth_config_last_reload_successful: got %v; want 1", v)
	}
	if n := reloads() - reloads0; n < 2 {
		t.Errorf("vigil_auth_config_reloads_total{result=\"success\"}: %v reloads during the test; want at least 2 (K2 added, K1 removed)", n)
	}
	// K1 is refused for writes and reads, K2 accepted for both.
	if c := probe("POST", logsURL, rotK1); c != 401 {
		t.Errorf("write with K1 after its removal: got %d; want 401", c)
	}
	if c := probe("GET", queryURL, rotK1); c != 401 {
		t.Errorf("read with K1 after its removal: got %d; want 401", c)
	}
	if c := probe("GET", queryURL, rotK2); c != 200 {
		t.Errorf("read with K2: got %d; want 200", c)
	}

	// A 401 came only to a request sent with K1, answered after the file
	// without K1 was in place; the straggler got one, and moved to K2.
	answers.mu.Lock()
	stragglerRefused := 0
	for _, r := range answers.refused {
		if r.who == fmt.Sprintf("writer %d", straggler) {
			stragglerRefused++
		}
		if r.key != rotK1 || r.at.Before(removed) {
			k := "K2"
			if r.key == rotK1 {
				k = "K1"
			}
			t.Errorf("%s: 401 for %s at %s, K1 removed at %s: a key in the file was refused",
				r.who, k, r.at.Format(time.RFC3339Nano), removed.Format(time.RFC3339Nano))
		}
	}
	t.Logf("accepted requests %v (writer -1: the OTLP exporter); retries by answer %v", answers.accepted, answers.retries)
	answers.mu.Unlock()
	if stragglerRefused == 0 {
		t.Errorf("writer %d, still sending K1 after its removal, was never refused", straggler)
	}

	// Every line is found, once per number, with the reader's key.
	total := 0
	for _, n := range sent {
		total += n
	}
	lineRE := regexp.MustCompile(`^writer=(\d+) line=(\d+)$`)
	var seen map[string]bool
	var found int
	eventually(t, 30*time.Second, "every line written found by LogQL", func() (bool, string) {
		now := time.Now()
		v := url.Values{"query": {`{service="rotation-e2e"}`}, "limit": {fmt.Sprint(2 * total)}, "direction": {"forward"},
			"start": {fmt.Sprint(now.Add(-time.Hour).UnixNano())}, "end": {fmt.Sprint(now.Add(time.Minute).UnixNano())}}
		code, _, body := authRequest(t, "GET", "http://"+p.query+"/loki/api/v1/query_range?"+v.Encode(), nil, "Authorization", "Bearer "+rotReader)
		if code != 200 {
			return false, fmt.Sprintf("%d %s", code, body)
		}
		var lr lokiResponse
		var ss []lokiStream
		if err := json.Unmarshal([]byte(body), &lr); err != nil {
			return false, err.Error()
		}
		if err := json.Unmarshal(lr.Data.Result, &ss); err != nil {
			return false, err.Error()
		}
		seen, found = map[string]bool{}, 0
		for _, s := range ss {
			for _, e := range s.Values {
				m := lineRE.FindStringSubmatch(e[1])
				if m == nil {
					return false, fmt.Sprintf("a line not written by the test: %q", e[1])
				}
				seen[m[1]+"/"+m[2]] = true
				found++
			}
		}
		return len(seen) == total, fmt.Sprintf("%d distinct lines of %d sent (%d found)", len(seen), total, found)
	})
	for w, n := range sent {
		for i := 0; i < n; i++ {
			if !seen[fmt.Sprintf("%d/%d", w, i)] {
				t.Fatalf("writer %d line %d missing", w, i)
			}
		}
	}
	t.Logf("%d lines sent by %d writers, %d distinct found (%d rows, duplicates of resent requests included)", total, writers, len(seen), found)

	// Every span is found by its trace id.
	if len(traceIDs) < 20 {
		t.Fatalf("only %d traces exported", len(traceIDs))
	}
	for _, id := range traceIDs {
		eventually(t, 20*time.Second, "trace "+id+" found", func() (bool, string) {
			code, _, body := authRequest(t, "GET", "http://"+p.query+"/api/traces/"+id, nil, "Authorization", "Bearer "+rotReader)
			var r struct {
				Data []struct {
					Spans []json.RawMessage `json:"spans"`
				} `json:"data"`
			}
			_ = json.Unmarshal([]byte(body), &r)
			return code == 200 && len(r.Data) == 1 && len(r.Data[0].Spans) == 2, fmt.Sprintf("%d %.300s", code, body)
		})
	}
	t.Logf("%d traces (%d spans) found by id", len(traceIDs), 2*len(traceIDs))
}
