//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/sdk/dump"
	"github.com/vigilhq/vigil/sdk/dump/dumptest"
)

// benchPanics are the panic sites of the benchmark's events: each is an
// issue of its own.
var benchPanics = []func(){
	func() { benchLookup(nil) },
	func() { benchIndex([]int{1, 2, 3}, 5) },
	func() { benchDivide(0) },
	func() { benchFail() },
}

//go:noinline
func benchLookup(m map[string]*int) int { return *m["x"] }

//go:noinline
func benchIndex(s []int, i int) int { return s[i] }

//go:noinline
func benchDivide(d int) int { return 10 / d }

//go:noinline
func benchFail() { panic(fmt.Errorf("payment gateway: %w", io.ErrUnexpectedEOF)) }

// benchEvents returns Go panic events as the SDK reports them — one per
// panic site in benchPanics, each with the request, the trace and every
// goroutine of this process, 20 of them parked in benchParked — taken
// from the envelopes package dump sent to a test intake.
func benchEvents(b *testing.B) []map[string]any {
	rc := dumptest.NewReceiver(b)
	rep, err := dump.New(dump.Options{DSN: rc.DSN(), Service: "bench-shop", Grade: 1, Env: "bench", Version: "v2.3.0",
		SpoolDir: b.TempDir(), DisableCrashOutput: true, Traceback: "-", InAppPrefixes: []string{"github.com/vigilhq/vigil/e2e"},
		Logger: slog.New(slog.DiscardHandler), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer rep.Close()
	stop := make(chan struct{})
	defer close(stop)
	for range 20 {
		go benchParked(stop)
	}
	for i, f := range benchPanics {
		func() {
			defer func() {
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://shop/orders/%d?sort=asc", i), nil)
				req.Header.Set("Authorization", "Bearer x")
				req.Pattern = "GET /orders/{id}"
				rep.Recovered(context.Background(), recover(), debug.Stack(), req)
			}()
			f()
		}()
	}
	events := rc.WaitEvents(len(benchPanics), 20*time.Second)
	out := make([]map[string]any, 0, len(events))
	for _, ev := range events {
		out = append(out, ev)
	}
	return out
}

//go:noinline
func benchParked(stop chan struct{}) { <-stop }

// benchEnvelope is one event as a gzip-compressed envelope, with a new
// event id and the current time, as an SDK sends it; n is the size of
// the event's JSON.
func benchEnvelope(b *testing.B, ev map[string]any, dsn string) (envelope []byte, n int) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	ev["event_id"] = hex.EncodeToString(id[:])
	ev["timestamp"] = float64(time.Now().UnixMicro()) / 1e6
	payload, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	fmt.Fprintf(zw, `{"event_id":%q,"dsn":%q,"sent_at":%q}`+"\n", ev["event_id"], dsn, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(zw, `{"type":"event","length":%d}`+"\n%s\n", len(payload), payload)
	zw.Close()
	return buf.Bytes(), len(payload)
}

// BenchmarkDumpsIntakeToQueryable measures vigil all-in-one from the
// Sentry intake to the dumps API: b.N Go panic events (about 20
// goroutines each, 4 issues) posted as envelopes by 1, 8 or 32 clients
// at once, one event per request as SDKs send them; the clock stops when
// the issues API counts all of them. Run with -benchtime Nx.
func BenchmarkDumpsIntakeToQueryable(b *testing.B) {
	templates := benchEvents(b)
	threads := 0
	for _, ev := range templates {
		ts, _ := dumptest.Path(ev, "threads", "values").([]any)
		threads += len(ts)
	}
	for _, clients := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchIntakeToQueryable(b, templates, clients)
			b.ReportMetric(float64(threads)/float64(len(templates)), "goroutines/event")
		})
	}
}

func benchIntakeToQueryable(b *testing.B, templates []map[string]any, benchClients int) {
	p := startAllInOne(b, b.TempDir())
	dsn := dsnOf(b, p)
	u, _ := url.Parse(dsn)
	auth := "Sentry sentry_version=7, sentry_client=bench/1, sentry_key=" + u.User.Username()
	intake := "http://" + p.dumps + "/api/9/envelope/"
	bodies := make([][]byte, b.N)
	var zipped, plain int64
	for i := range bodies {
		var n int
		bodies[i], n = benchEnvelope(b, templates[i%len(templates)], dsn)
		zipped += int64(len(bodies[i]))
		plain += int64(n)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
	defer client.CloseIdleConnections()

	cpu0, err := p.vigil.CPUSeconds()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var next, retries atomic.Int64
	var wg sync.WaitGroup
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				for {
					code, msg, err := benchPost(client, intake, auth, bodies[i])
					if err != nil {
						b.Error(err)
						return
					}
					if code == http.StatusOK {
						break
					}
					if code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
						b.Errorf("intake answered %d %s", code, msg)
						return
					}
					retries.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	var counted int64
	for counted < int64(b.N) && !b.Failed() {
		counted = 0
		for _, is := range p.issues("bench-shop") {
			counted += is.Count
		}
		if counted > int64(b.N) {
			b.Fatalf("the issues count %d events; %d were sent", counted, b.N)
		}
		time.Sleep(20 * time.Millisecond)
	}
	queryable := time.Since(start)
	b.StopTimer()
	cpu, err := p.vigil.CPUSeconds()
	if err != nil {
		b.Fatal(err)
	}
	if n := len(p.issues("bench-shop")); n != min(b.N, len(templates)) {
		b.Errorf("%d issues of %d events; want one per panic site", n, b.N)
	}
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted-events/s")
	b.ReportMetric(float64(b.N)/queryable.Seconds(), "queryable-events/s")
	b.ReportMetric(float64(plain)/float64(b.N), "json-B/event")
	b.ReportMetric(float64(zipped)/float64(b.N), "gzip-B/event")
	b.ReportMetric(float64(retries.Load()), "retries")
	b.ReportMetric((cpu-cpu0)*1e6/float64(b.N), "vigil-CPU-µs/event")
}

// benchPost sends one envelope and returns the intake's status and
// answer.
func benchPost(client *http.Client, intake, auth string, body []byte) (int, string, error) {
	req, _ := http.NewRequest("POST", intake, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-sentry-envelope")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("X-Sentry-Auth", auth)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.TrimSpace(string(msg)), nil
}
