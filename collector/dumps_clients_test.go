package collector

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/sentry"
)

func attrValue(as []model.Attr, k string) string {
	for _, a := range as {
		if a.Key == k {
			return a.Value
		}
	}
	return ""
}

type orderError struct{ id int }

func (e *orderError) Error() string { return fmt.Sprintf("order %d not found", e.id) }

// panicInHandler panics and reports it as a service's handler does.
func panicInHandler() {
	defer sentrygo.Recover()
	var m map[string]int
	//lint:ignore SA5000 the panic is the point: the dump tests catch it
	m["x"] = 1 // assignment to entry in nil map
}

// TestDumpsSentryGo sends what sentry-go sends — a recovered panic, a
// wrapped error and a message — to a collector on a real disk queue.
func TestDumpsSentryGo(t *testing.T) {
	dc := newDumpsCollector(t, keyed(testKey), nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	err := sentrygo.Init(sentrygo.ClientOptions{
		Dsn:              "http://" + testKey + "@" + dc.c.Addr("dumps") + "/42",
		Release:          "api@2.0.0",
		Environment:      "prod",
		ServerName:       "go-host",
		AttachStacktrace: true,
		HTTPClient:       &http.Client{Transport: tr},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sentrygo.CurrentHub().Client().Close()
	sentrygo.ConfigureScope(func(scope *sentrygo.Scope) {
		scope.SetTag("service", "api")
		scope.SetTag("grade", "1")
		pc := sentrygo.NewPropagationContext()
		copy(pc.TraceID[:], []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36})
		scope.SetPropagationContext(pc)
		req, _ := http.NewRequest("GET", "http://api.local/orders?id=7", nil)
		req.Header.Set("X-Request-Id", "r-1")
		scope.SetRequest(req)
	})

	panicInHandler()
	sentrygo.CaptureException(fmt.Errorf("loading order: %w", &orderError{id: 7}))
	sentrygo.CaptureMessage("cache is cold")
	if !sentrygo.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not flush")
	}

	got := dc.drainN(t, 3)
	p, ok := got["runtime.plainError"]
	if !ok {
		t.Fatalf("no panic dump among %v", got)
	}
	if p.Exceptions[0].Value != "assignment to entry in nil map" || p.Level != "fatal" {
		t.Errorf("panic: %+v level %s", p.Exceptions[0], p.Level)
	}
	fr := p.Exceptions[0].Frames
	if top := fr[len(fr)-1]; top.Function != "panicInHandler" || !top.InApp || !strings.HasSuffix(top.AbsPath, "dumps_clients_test.go") {
		t.Errorf("newest frame (last) is %+v; want panicInHandler in app", top)
	}
	if fr[0].Function == "panicInHandler" {
		t.Error("frames are not oldest first")
	}
	for _, d := range got {
		if d.Project != "42" || d.Service != "api" || d.Grade != 1 || d.Release != "api@2.0.0" || d.Environment != "prod" ||
			d.ServerName != "go-host" || d.Platform != "go" || !strings.HasPrefix(d.SDK, "sentry.go/") ||
			d.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || len(d.Modules) == 0 {
			t.Errorf("dump fields: %+v", d)
		}
		if d.Request == nil || d.Request.URL != "http://api.local/orders" || d.Request.Query != "id=7" || attrValue(d.Request.Headers, "X-Request-Id") != "r-1" {
			t.Errorf("request: %+v", d.Request)
		}
	}
	e := got["*fmt.wrapError"]
	if len(e.Exceptions) != 2 || e.Exceptions[1].Value != "loading order: order 7 not found" || e.Exceptions[0].Type != "*collector.orderError" {
		t.Errorf("wrapped error, cause first: %+v", e.Exceptions)
	}
	m := got["cache is cold"]
	if m.Level != "info" || len(m.Threads) != 1 || !m.Threads[0].Current || len(m.Threads[0].Frames) == 0 {
		t.Errorf("message: level %s threads %+v", m.Level, m.Threads)
	}
}

// pythonSentrySDK returns the PYTHONPATH under which python3 imports
// sentry_sdk (childproc.PythonPath), skipping without it.
func pythonSentrySDK(t *testing.T) string {
	t.Helper()
	path, err := childproc.PythonPath("sentry_sdk")
	if err != nil {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return path
}

const pythonClient = `
import io, os, sys
import sentry_sdk
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

sentry_sdk.init(dsn=os.environ["DSN"], release="shop@1.2.3", environment="staging",
                server_name="py-host", send_default_pii=True, traces_sample_rate=1.0)
sentry_sdk.set_tag("service", "checkout")
sentry_sdk.set_tag("grade", "2")

def load(cart):
    return {}[cart]

def app(environ, start_response):
    load("missing")

environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/cart", "QUERY_STRING": "step=2&token=abc",
           "SERVER_NAME": "shop.local", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
           "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
           "HTTP_AUTHORIZATION": "Bearer s3cr3t", "HTTP_COOKIE": "sid=1", "HTTP_X_REQUEST_ID": "r-9"}
try:
    SentryWsgiMiddleware(app)(environ, lambda *a: None)
except KeyError:
    pass
sentry_sdk.capture_message("hello from python", level="warning")
sentry_sdk.flush(timeout=10)
`

// TestDumpsPythonSDK sends what Python's sentry-sdk (from PyPI) sends —
// a WSGI request that raised, with its secrets unredacted
// (send_default_pii), and a message — gzipped, to the collector.
func TestDumpsPythonSDK(t *testing.T) {
	pypath := pythonSentrySDK(t)
	dc := newDumpsCollector(t, keyed(testKey), nil)
	dir := t.TempDir()
	script := filepath.Join(dir, "shop.py")
	if err := os.WriteFile(script, []byte(pythonClient), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", script)
	cmd.Dir = dir // the SDK marks frames under the working directory in-app
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pypath, "DSN=http://"+testKey+"@"+dc.c.Addr("dumps")+"/42")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	got := dc.drainN(t, 2) // the transaction is not a dump
	k, ok := got["KeyError"]
	if !ok {
		t.Fatalf("no KeyError dump among %+v", got)
	}
	ex := k.Exceptions[len(k.Exceptions)-1]
	if ex.Value != "'missing'" || ex.Mechanism != "wsgi" || ex.Handled == nil || *ex.Handled {
		t.Errorf("exception %+v", ex)
	}
	fr := ex.Frames
	if top := fr[len(fr)-1]; top.Function != "load" || !top.InApp || top.Filename != "shop.py" {
		t.Errorf("newest frame %+v; want load in shop.py, in app", top)
	}
	if k.Platform != "python" || k.Service != "checkout" || k.Grade != 2 || k.Release != "shop@1.2.3" || k.Environment != "staging" ||
		k.ServerName != "py-host" || len(k.TraceID) != 32 || !strings.HasPrefix(k.SDK, "sentry.python") || k.Transaction == "" {
		t.Errorf("dump fields: %+v", k)
	}
	r := k.Request
	if r == nil || r.Method != "POST" || r.URL != "http://shop.local/cart" {
		t.Fatalf("request %+v", r)
	}
	if r.Query != "step=2&token=%5BFiltered%5D" {
		t.Errorf("query %q; want the token redacted", r.Query)
	}
	for _, h := range []string{"Authorization", "Cookie"} {
		if v := attrValue(r.Headers, h); v != sentry.Filtered {
			t.Errorf("header %s = %q; want it redacted by the intake", h, v)
		}
	}
	if v := attrValue(r.Headers, "X-Request-Id"); v != "r-9" {
		t.Errorf("X-Request-Id = %q", v)
	}
	if m := got["hello from python"]; m.Level != "warning" || m.Service != "checkout" {
		t.Errorf("message dump %+v", m)
	}
	if n := testutil.ToFloat64(dc.c.dumps.items.WithLabelValues("transaction", "ignored")); n != 1 {
		t.Errorf("ignored transactions counted %v; want 1", n)
	}
}
