//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/model"
)

var (
	sdkServiceOnce sync.Once
	sdkServiceBin  string
	sdkServiceErr  error
)

// sdkServiceBinary builds ./sdkservice, the test service on the Go SDK.
func sdkServiceBinary(t *testing.T) string {
	t.Helper()
	sdkServiceOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-e2e-sdkservice")
		if err != nil {
			sdkServiceErr = err
			return
		}
		sdkServiceBin = filepath.Join(dir, "sdkservice")
		if out, err := exec.Command("go", "build", "-o", sdkServiceBin, "./sdkservice").CombinedOutput(); err != nil {
			sdkServiceErr = fmt.Errorf("go build ./sdkservice: %v\n%s", err, out)
		}
	})
	if sdkServiceErr != nil {
		t.Fatal(sdkServiceErr)
	}
	return sdkServiceBin
}

// sdkService is one run of ./sdkservice, configured through VIGIL_…
// variables as a deployment would.
type sdkService struct {
	t    *testing.T
	proc childproc.Process
	addr string
	log  *bytes.Buffer
}

// newSDKService prepares the service "sdk-shop" reporting its spans to
// p's collector and its panics to dsn, spooling in spool; env adds or
// overrides variables. It is not started.
func newSDKService(t *testing.T, p *proc, dsn, spool string, env ...string) *sdkService {
	s := &sdkService{t: t, addr: freePort(t), log: &bytes.Buffer{}}
	s.proc = childproc.Process{Binary: sdkServiceBinary(t), Args: []string{"--listen", s.addr},
		Ready: s.addr, Stdout: s.log, Stderr: s.log,
		Env: append(os.Environ(), append([]string{"VIGIL_SERVICE=sdk-shop", "VIGIL_GRADE=2", "VIGIL_ENV=e2e",
			"VIGIL_VERSION=v1.0.0", "VIGIL_HOST=e2e-host", "VIGIL_COLLECTOR=http://" + p.collector,
			"VIGIL_DUMPS_DSN=" + dsn, "VIGIL_DUMPS_SPOOL_DIR=" + spool, "VIGIL_DUMPS_WATCH=false", "GOTRACEBACK=",
			"OTEL_BSP_SCHEDULE_DELAY=100"}, env...)...)}
	t.Cleanup(func() { s.proc.Kill() })
	return s
}

func (s *sdkService) start() {
	s.t.Helper()
	if err := s.proc.Start(); err != nil {
		s.t.Fatalf("sdkservice: %v\n%s", err, s.log)
	}
}

func (s *sdkService) stop() {
	s.t.Helper()
	if err := s.proc.Stop(20 * time.Second); err != nil {
		s.t.Fatalf("sdkservice: %v\n%s", err, s.log)
	}
}

// do sends a request to the service with a W3C trace (when traceID is
// not "") and returns the status.
func (s *sdkService) do(method, path, traceID string) int {
	s.t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.addr+path, nil)
	if traceID != "" {
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	}
	req.Header.Set("Authorization", "Bearer secret-of-the-caller")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v\n%s", method, path, err, s.log)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// crash asks the service to die of concurrent map writes and waits until
// it exited with the Go runtime's status 2.
func (s *sdkService) crash() {
	s.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/crash", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		s.t.Fatalf("POST /crash answered %d; want the process to die", resp.StatusCode)
	}
	eventually(s.t, 20*time.Second, "the crashed service gone", func() (bool, string) { return !s.proc.Running(), "" })
	if err := s.proc.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 2") {
		s.t.Fatalf("crashed service: %v; want exit status 2\n%s", err, s.log)
	}
	if !strings.Contains(s.log.String(), "fatal error: concurrent map writes") {
		s.t.Fatalf("the crash is not on the service's standard error:\n%s", s.log)
	}
}

// metric is a metric of the service's /metrics.
func (s *sdkService) metric(name string, labels ...string) float64 {
	return metric(s.t, s.addr, name, labels...)
}

// dsnOf returns the DSN of all-in-one's intake with the key it created,
// for project 9.
func dsnOf(t testing.TB, p *proc) string {
	key, err := os.ReadFile(filepath.Join(p.dataDir(), "dumps", "dsn-key"))
	if err != nil {
		t.Fatalf("all-in-one kept no DSN key: %v", err)
	}
	return "http://" + strings.TrimSpace(string(key)) + "@" + p.dumps + "/9"
}

// issueBy returns the issue of service whose culprit is in function fn
// (main.fn), with count events, waiting until it is so; no other issue
// of the service may count more events than wanted.
func (p *proc) issueBy(service, fn string, count int64) model.Issue {
	p.t.Helper()
	var is model.Issue
	eventually(p.t, 60*time.Second, fmt.Sprintf("issue of %s in %s with %d events", service, fn, count), func() (bool, string) {
		for _, i := range p.issues(service) {
			if i.Culprit == "main."+fn {
				is = i
				return i.Count == count, fmt.Sprintf("%+v", i)
			}
		}
		return false, fmt.Sprintf("%+v", p.issues(service))
	})
	return is
}

// issueEvents returns an issue's latest events (without threads).
func (p *proc) issueEvents(id string) []model.Dump {
	p.t.Helper()
	code, body, _ := p.get("/vigil/api/v1/dumps/issues/" + id)
	var r struct{ Events []model.Dump }
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
		p.t.Fatalf("issue %s: %d %v %s", id, code, err, body)
	}
	return r.Events
}

// wantTraceIDs checks that an issue's events are on the traces given
// (sorted), one each.
func (p *proc) wantTraceIDs(issue string, traces []string) {
	p.t.Helper()
	var got []string
	for _, e := range p.issueEvents(issue) {
		got = append(got, e.TraceID)
	}
	slices.Sort(got)
	if !slices.Equal(got, traces) {
		p.t.Errorf("trace ids of the events of issue %s: %q; want one on each request's trace %q", issue, got, traces)
	}
}

// wantIndexedDumps checks how many events all-in-one's ingester stored.
func (p *proc) wantIndexedDumps(n float64) {
	p.t.Helper()
	if got := metric(p.t, p.query, "vigil_ingester_indexed_dumps_total"); got != n {
		p.t.Errorf("vigil_ingester_indexed_dumps_total = %v; want %v", got, n)
	}
}

// event returns a whole event, goroutines included.
func (p *proc) event(id string) model.Dump {
	p.t.Helper()
	code, body, _ := p.get("/vigil/api/v1/dumps/events/" + id)
	var d model.Dump
	if err := json.Unmarshal([]byte(body), &d); code != 200 || err != nil {
		p.t.Fatalf("event %s: %d %v %s", id, code, err, body)
	}
	return d
}

// checkDump checks what every dump of the service holds: the raised
// exception's type and value, its newest in-app frame, the parked
// goroutine among the threads and the crashed one marked, the service's
// identity.
func checkDump(t *testing.T, d model.Dump, excType string, values []string, top string) {
	t.Helper()
	if len(d.Exceptions) == 0 {
		t.Fatalf("event %s has no exception", d.EventID)
	}
	exc := d.Exceptions[len(d.Exceptions)-1]
	if exc.Type != excType || !slices.Contains(values, exc.Value) {
		t.Errorf("event %s: exception %q: %q; want %q: one of %q", d.EventID, exc.Type, exc.Value, excType, values)
	}
	if got := topInApp(exc.Frames); got != top {
		t.Errorf("event %s: newest in-app frame %q; want %q (frames %+v)", d.EventID, got, top, exc.Frames)
	}
	parked, crashed := 0, 0
	for _, th := range d.Threads {
		if topInApp(th.Frames) == "parkedWorker" {
			parked++
		}
		if th.Crashed {
			crashed++
			if got := topInApp(th.Frames); got != top {
				t.Errorf("event %s: crashed goroutine %s in %q; want %q", d.EventID, th.ID, got, top)
			}
		}
	}
	if parked != 1 || crashed != 1 || len(d.Threads) < 3 {
		t.Errorf("event %s: %d goroutines, %d parked in parkedWorker, %d crashed; want every goroutine, the parked one and the crashed one among them",
			d.EventID, len(d.Threads), parked, crashed)
	}
	if d.Service != "sdk-shop" || d.Grade != 2 || d.Project != "9" || d.Release != "v1.0.0" || d.Environment != "e2e" || d.ServerName != "e2e-host" {
		t.Errorf("event %s: service %q grade %d project %q release %q env %q host %q; want the service's identity",
			d.EventID, d.Service, d.Grade, d.Project, d.Release, d.Environment, d.ServerName)
	}
}

// topInApp is the function of the newest in-app frame.
func topInApp(frames []model.Frame) string {
	for i := len(frames) - 1; i >= 0; i-- {
		if frames[i].InApp {
			return frames[i].Function
		}
	}
	return ""
}

// TestSDKDumps runs a service built on the Go SDK (./sdkservice) against
// vigil all-in-one, reporting to the intake with the DSN key all-in-one
// created. A handler that panics three times is one issue counted three
// times, each event on the trace of its request, which the Jaeger API
// finds; a panic in an sdk.GoContext goroutine is an issue of its own on
// its request's trace. Each event holds the exception, the function that
// panicked as its newest in-app frame, and every goroutine.
func TestSDKDumps(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	svc := newSDKService(t, p, dsnOf(t, p), t.TempDir())
	svc.start()

	traces := []string{"4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4737", "4bf92f3577b34da6a3ce929d0e0e4738"}
	for i, tr := range traces {
		if code := svc.do("GET", fmt.Sprintf("/orders/o-%d", i), tr); code != 500 {
			t.Fatalf("GET /orders/o-%d: %d; want 500 from the recovered panic", i, code)
		}
	}
	const jobTrace = "5bf92f3577b34da6a3ce929d0e0e4739"
	if code := svc.do("POST", "/jobs/reconcile", jobTrace); code != 202 {
		t.Fatalf("POST /jobs/reconcile: %d; want 202", code)
	}

	handler := p.issueBy("sdk-shop", "chargeOrder", 3)
	goroutine := p.issueBy("sdk-shop", "reconcileLedger", 1)
	if iss := p.issues("sdk-shop"); len(iss) != 2 {
		t.Errorf("%d issues of sdk-shop; want 2: %+v", len(iss), iss)
	}
	if handler.Level != "error" || handler.Status != model.IssueUnresolved || strings.Join(handler.Releases, ",") != "v1.0.0" {
		t.Errorf("handler's issue %+v; want level error, unresolved, release v1.0.0", handler)
	}

	p.wantTraceIDs(handler.ID, traces)
	for _, e := range p.issueEvents(handler.ID) {
		d := p.event(e.EventID)
		checkDump(t, d, "string", []string{"card declined for order o-0", "card declined for order o-1", "card declined for order o-2"}, "chargeOrder")
		if d.Transaction != "GET /orders/{id}" || d.Request == nil || d.Request.Method != "GET" || !strings.Contains(d.Request.URL, "/orders/o-") {
			t.Errorf("event %s: transaction %q, request %+v; want the route and the request", d.EventID, d.Transaction, d.Request)
		}
		for _, h := range d.Request.Headers {
			if h.Key == "Authorization" && h.Value != "[Filtered]" {
				t.Errorf("event %s: Authorization header %q; want it filtered", d.EventID, h.Value)
			}
		}
	}
	d := p.event(goroutine.LastEventID)
	checkDump(t, d, "runtime.plainError", []string{"assignment to entry in nil map"}, "reconcileLedger")
	if d.TraceID != jobTrace {
		t.Errorf("goroutine's event on trace %q; want its request's %s", d.TraceID, jobTrace)
	}

	// The service sent its spans too: the dump's trace is in the Jaeger API.
	tr := p.getTrace(traces[2], 1)
	if s := tr.Spans[0]; tr.Processes[s.ProcessID].ServiceName != "sdk-shop" || s.OperationName != "GET /orders/{id}" {
		t.Errorf("trace %s: span %q of %q; want sdk-shop's GET /orders/{id}", traces[2], s.OperationName, tr.Processes[s.ProcessID].ServiceName)
	}
	if _, v := tagOf(tr, 0, "error"); v != true {
		t.Errorf("trace %s: the panicking request's span is not marked error: %+v", traces[2], tr.Spans[0].Tags)
	}
	if n := svc.metric("vigil_sdk_panics_total", "where", "http"); n != 3 {
		t.Errorf("vigil_sdk_panics_total{where=http} = %v; want 3", n)
	}
	svc.stop()
	p.wantIndexedDumps(4)
}

// TestSDKFatalError crashes the service on the SDK with "fatal error:
// concurrent map writes", which recover cannot catch. Run under the SDK's
// watching process, the crash reaches all-in-one as it happens, with the
// exact message; the next process does not report it again. Run
// unwatched, the next process reports it at start from the crash output
// the runtime left in the spool: the same issue, counted twice.
func TestSDKFatalError(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	dsn, spool := dsnOf(t, p), t.TempDir()
	watched := newSDKService(t, p, dsn, spool, "VIGIL_DUMPS_WATCH=true")
	watched.start()
	watched.crash()
	crash := p.issueBy("sdk-shop", "mapWriter", 1)
	d := p.event(crash.LastEventID)
	checkDump(t, d, "fatal error", []string{"concurrent map writes"}, "mapWriter")
	if crash.Level != "fatal" || crash.Title != "fatal error: concurrent map writes" {
		t.Errorf("crash issue %+v; want level fatal, titled with the runtime's message", crash)
	}

	// The next watched process reports a panic, and not the crash again:
	// the spool sends oldest first, so the crash would come before it.
	watched.start()
	if code := watched.do("GET", "/orders/o-1", ""); code != 500 {
		t.Fatalf("GET /orders/o-1: %d; want 500", code)
	}
	p.issueBy("sdk-shop", "chargeOrder", 1)
	if is := p.issueBy("sdk-shop", "mapWriter", 1); is.Count != 1 {
		t.Errorf("crash issue counts %d events after a restart; want 1", is.Count)
	}
	watched.stop()

	unwatched := newSDKService(t, p, dsn, spool)
	unwatched.start()
	unwatched.crash()
	if n := len(p.issueEvents(crash.ID)); n != 1 {
		t.Errorf("crash issue has %d events before the crashed service restarted; want 1", n)
	}
	unwatched.start()
	p.issueBy("sdk-shop", "mapWriter", 2)
	var second model.Dump
	for _, e := range p.issueEvents(crash.ID) {
		if e.EventID != crash.LastEventID {
			second = p.event(e.EventID)
		}
	}
	// Read from the crash output, the message is inferred from the stack
	// (golang/go#76859), which cannot always tell writes from access.
	checkDump(t, second, "fatal error", []string{"concurrent map writes", "concurrent map access"}, "mapWriter")
	if second.Level != "fatal" {
		t.Errorf("crash reported at the next start: level %q; want fatal", second.Level)
	}
	unwatched.stop()
	p.wantIndexedDumps(3) // two crashes and a panic
}

// TestSDKDumpsSpooled panics the service on the SDK while all-in-one is
// down: the reports wait in the SDK's spool — across a restart of the
// service — and reach all-in-one once it is back, each counted once.
func TestSDKDumpsSpooled(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	dsn, spool := dsnOf(t, p), t.TempDir()
	p.stop()

	svc := newSDKService(t, p, dsn, spool)
	svc.start()
	traces := []string{"6bf92f3577b34da6a3ce929d0e0e4701", "6bf92f3577b34da6a3ce929d0e0e4702", "6bf92f3577b34da6a3ce929d0e0e4703"}
	for i, tr := range traces[:2] {
		if code := svc.do("GET", fmt.Sprintf("/orders/o-%d", i), tr); code != 500 {
			t.Fatalf("GET /orders/o-%d: %d; want 500", i, code)
		}
	}
	if code := svc.do("POST", "/jobs/reconcile", ""); code != 202 {
		t.Fatalf("POST /jobs/reconcile: %d; want 202", code)
	}
	eventually(t, 20*time.Second, "3 reports spooled and a failed delivery", func() (bool, string) {
		spooled, failed := svc.metric("vigil_sdk_dumps_spooled"), svc.metric("vigil_sdk_dumps_send_failures_total", "reason", "network")
		return spooled == 3 && failed > 0, fmt.Sprintf("spooled %v, network failures %v", spooled, failed)
	})
	svc.stop()
	if !strings.Contains(svc.log.String(), "3 reports still spooled") {
		t.Errorf("the service's shutdown did not say 3 reports were left:\n%s", svc.log)
	}

	// The next process of the service panics once more, still unheard.
	svc.start()
	if code := svc.do("GET", "/orders/o-2", traces[2]); code != 500 {
		t.Fatalf("GET /orders/o-2: %d; want 500", code)
	}
	if n := svc.metric("vigil_sdk_dumps_sent_total"); n != 0 {
		t.Fatalf("vigil_sdk_dumps_sent_total = %v with all-in-one down", n)
	}

	p.restart()
	handler := p.issueBy("sdk-shop", "chargeOrder", 3)
	p.issueBy("sdk-shop", "reconcileLedger", 1)
	eventually(t, 20*time.Second, "the spool empty", func() (bool, string) {
		spooled, sent := svc.metric("vigil_sdk_dumps_spooled"), svc.metric("vigil_sdk_dumps_sent_total")
		return spooled == 0 && sent == 4, fmt.Sprintf("spooled %v, sent %v", spooled, sent)
	})
	p.wantTraceIDs(handler.ID, traces)
	svc.stop()
	p.wantIndexedDumps(4) // each report once
	if iss := p.issues("sdk-shop"); len(iss) != 2 {
		t.Errorf("%d issues of sdk-shop; want 2: %+v", len(iss), iss)
	}
}
