//go:build e2e

// Package e2e drives the built vigil binary as a separate process, as a user
// would: over its HTTP APIs, with real files, signals and kill -9.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// vigilBinary returns the binary under test: $VIGIL_BINARY (set by make
// test), or one built from the tree.
func vigilBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if b := os.Getenv("VIGIL_BINARY"); b != "" {
			binary = b
			return
		}
		dir, err := os.MkdirTemp("", "vigil-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "vigil")
		out, err := exec.Command("go", "build", "-o", binary, "../cmd/vigil").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func freePort(t testing.TB) string {
	t.Helper()
	addr, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func freeUDPPort(t testing.TB) string {
	t.Helper()
	addr, err := childproc.FreeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// proc is one running vigil process.
type proc struct {
	t         testing.TB
	vigil     childproc.Process
	args      []string
	log       *bytes.Buffer
	collector string // host:port
	query     string
	// Trace receivers: OTLP/gRPC, Zipkin, Jaeger HTTP (TCP), Jaeger compact
	// and binary (UDP).
	otlpGRPC, zipkin, jaegerHTTP, jaegerCompact, jaegerBinary string
	// dumps is the Sentry-compatible dumps intake.
	dumps string
	// profiler is the profiler's HTTP API (all-in-one).
	profiler string
	// federation is the metrics federation's HTTP API (all-in-one).
	federation string
}

// startAllInOne starts vigil all-in-one on dataDir with extra flags and
// waits until it is ready. Ports are kept across restarts of the same proc.
func startAllInOne(t testing.TB, dataDir string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, collector: freePort(t), query: freePort(t), profiler: freePort(t), federation: freePort(t)}
	p.args = append(append([]string{"all-in-one", "--data-dir", dataDir,
		"--collector.http.listen", p.collector, "--query.listen", p.query, "--profiler.listen", p.profiler,
		"--federation.listen", p.federation, "--log.level", "warn"},
		p.receiverArgs()...), extra...)
	p.start()
	t.Cleanup(func() { p.stop() })
	return p
}

// receiverArgs picks free ports for the receivers of p other than the
// HTTP one (the trace receivers and the dumps intake), so that several
// collectors run side by side, and returns the flags that listen on them.
func (p *proc) receiverArgs() []string {
	p.otlpGRPC, p.zipkin, p.jaegerHTTP, p.dumps = freePort(p.t), freePort(p.t), freePort(p.t), freePort(p.t)
	p.jaegerCompact, p.jaegerBinary = freeUDPPort(p.t), freeUDPPort(p.t)
	return []string{"--collector.otlp.grpc-listen", p.otlpGRPC, "--collector.zipkin.listen", p.zipkin,
		"--collector.jaeger.http-listen", p.jaegerHTTP, "--collector.jaeger.compact-listen", p.jaegerCompact,
		"--collector.jaeger.binary-listen", p.jaegerBinary, "--collector.dumps.listen", p.dumps}
}

func (p *proc) start() {
	p.t.Helper()
	p.log = &bytes.Buffer{}
	p.vigil = childproc.Process{Binary: vigilBinary(p.t), Args: p.args, Ready: p.query, Stdout: p.log, Stderr: p.log}
	if err := p.vigil.Start(); err != nil {
		p.t.Fatalf("vigil %v\n%s", err, p.log)
	}
}

// dataDir returns the --data-dir the process runs with.
func (p *proc) dataDir() string {
	for i, a := range p.args {
		if a == "--data-dir" && i+1 < len(p.args) {
			return p.args[i+1]
		}
	}
	return ""
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() { p.vigil.Kill() }

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	if err := p.vigil.Stop(30 * time.Second); err != nil {
		p.t.Errorf("vigil %v\n%s", err, p.log)
	}
}

func (p *proc) restart() { p.start() }

// post sends body to the collector and returns status and response body.
func (p *proc) post(path, contentType string, body []byte, headers ...string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+p.collector+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lokiStream is one stream of a Loki streams result.
type lokiStream struct {
	Stream map[string]string `json:"stream"`
	Values [][2]string       `json:"values"`
}

type lokiResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// queryRange runs a Loki query_range and returns status, raw body and the
// decoded response (when 200).
func (p *proc) queryRange(q string, params ...string) (int, string, lokiResponse) {
	p.t.Helper()
	v := url.Values{"query": {q}}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	return p.get("/loki/api/v1/query_range?" + v.Encode())
}

func (p *proc) get(pathAndQuery string) (int, string, lokiResponse) {
	p.t.Helper()
	resp, err := http.Get("http://" + p.query + pathAndQuery)
	if err != nil {
		p.t.Fatalf("GET %s: %v", pathAndQuery, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var lr lokiResponse
	if resp.StatusCode == 200 && strings.HasPrefix(pathAndQuery, "/loki/") && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &lr); err != nil {
			p.t.Fatalf("GET %s: bad JSON %v: %s", pathAndQuery, err, b)
		}
	}
	return resp.StatusCode, string(b), lr
}

// streams runs a log query over the last day and returns its streams. A
// store momentarily unavailable (a 5xx: Elasticsearch allocating a new
// index's shard on a loaded machine) is asked again for up to 30 s.
func (p *proc) streams(q string, limit int) []lokiStream {
	p.t.Helper()
	var code int
	var body string
	var lr lokiResponse
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		now := time.Now()
		code, body, lr = p.queryRange(q, "limit", fmt.Sprint(limit), "direction", "forward",
			"start", fmt.Sprint(now.Add(-24*time.Hour).UnixNano()), "end", fmt.Sprint(now.Add(time.Minute).UnixNano()))
		if code < 500 || time.Now().After(deadline) {
			break
		}
		p.t.Logf("query %s: %d %s; asking again", q, code, body)
	}
	if code != 200 {
		p.t.Fatalf("query %s: %d %s", q, code, body)
	}
	var ss []lokiStream
	if err := json.Unmarshal(lr.Data.Result, &ss); err != nil {
		p.t.Fatalf("query %s: %v", q, err)
	}
	return ss
}

// countLines returns the number of lines a log query finds.
func (p *proc) countLines(q string, limit int) int {
	n := 0
	for _, s := range p.streams(q, limit) {
		n += len(s.Values)
	}
	return n
}

// metric returns the sum of the samples of a metric family on /metrics of
// addr whose labels contain every one of the given label pairs.
func metric(t testing.TB, addr, name string, labels ...string) float64 {
	t.Helper()
	v, err := childproc.Metric(addr, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s; last: %s", what, timeout, last)
}

// tryPost is post without failing the test on a transport error, for
// clients that retry while vigil is down.
func (p *proc) tryPost(path, contentType string, body []byte) (int, string, error) {
	resp, err := http.Post("http://"+p.collector+path, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func itoa(n int) string { return fmt.Sprint(n) }

func httpPost(url string, body []byte) (*http.Response, error) {
	resp, err := http.Post(url, "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func httpPostJSON(url, body string) (int, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
