//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The flows between pages, by clicks as a user makes them.

// TestUIFlowLogsTraceLogs: from a log line to its trace, and from a span of
// that trace back to the logs that mention it.
func TestUIFlowLogsTraceLogs(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	base := time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond)
	u := &uiTracers{t: t, p: p, tps: map[string]*sdktrace.TracerProvider{}}
	checkout := u.checkout(base)
	u.shutdown()
	traceID := checkout.TraceID().String()

	// The frontend's log lines of that request carry its trace id in the
	// line, as the SDK's JSON logs do; one line of another request does not.
	ns := func(d time.Duration) string { return fmt.Sprint(base.Add(d).UnixNano()) }
	seed := `{"streams":[{"stream":{"service_name":"frontend","level":"info"},"values":[
 ["` + ns(2*time.Millisecond) + `","{\"msg\":\"checkout started\",\"trace_id\":\"` + traceID + `\"}"],
 ["` + ns(99*time.Millisecond) + `","{\"msg\":\"checkout failed: card declined\",\"trace_id\":\"` + traceID + `\"}"],
 ["` + ns(3*time.Second) + `","{\"msg\":\"health ok\"}"]]}]}`
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(seed)); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "the lines and the trace are queryable", func() (bool, string) {
		n := p.countLines(`{service_name="frontend"}`, 10)
		code, _, _ := p.get("/api/traces/" + traceID)
		return n == 3 && code == 200, fmt.Sprintf("%d lines, trace %d", n, code)
	})

	b := newBrowser(t)
	b.open("http://" + p.query + `/#/logs?query=` + url.QueryEscape(`{service_name="frontend"}`) + "&from=now-15m&to=now")
	b.waitText("#logs-results", "checkout failed: card declined")
	b.screenshot("flow-1-logs")

	// The line's trace link opens the trace's waterfall.
	b.run(clickJS(`[...document.querySelectorAll('.logs-row')].find(r => r.textContent.includes('checkout failed')).querySelector('a.logs-trace')`))
	b.waitText(".trace-summary", "8 spans")
	if loc := b.location(); !strings.Contains(loc, "#/trace/"+traceID) {
		t.Fatalf("after the trace link the page is %s, want the trace %s", loc, traceID)
	}
	b.screenshot("flow-2-trace")

	// The root span's logs link lists the two lines of the request, not the
	// other one.
	b.clickText(".wf-sel", "GET /checkout")
	b.click(".trace-logs-link")
	b.waitText("#logs-results", "checkout started")
	b.waitText("#logs-status", "2 lines")
	if got := b.logsLines(); len(got) != 2 || strings.Contains(strings.Join(got, "\n"), "health ok") {
		t.Fatalf("the span's logs show %q, want the request's two lines", got)
	}
	b.screenshot("flow-3-span-logs")
	b.noConsoleErrors()
}

// clickJS clicks the element the expression returns.
func clickJS(expr string) chromedp.Action { return chromedp.Evaluate("("+expr+").click()", nil) }

// TestUIFlowHomeToGoroutines: from the home page to a service's dump
// issues, to the issue, to the goroutines of its dump.
func TestUIFlowHomeToGoroutines(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	svc := newSDKService(t, p, dsnOf(t, p), t.TempDir())
	svc.start()
	for i, tr := range []string{"7bf92f3577b34da6a3ce929d0e0e4736", "7bf92f3577b34da6a3ce929d0e0e4737"} {
		if code := svc.do("GET", fmt.Sprintf("/orders/o-%d", i), tr); code != 500 {
			t.Fatalf("GET /orders/o-%d: %d; want 500 from the recovered panic", i, code)
		}
	}
	is := p.issueBy("sdk-shop", "chargeOrder", 2)

	b := newBrowser(t)
	b.open("http://" + p.query + "/")
	row := `tr.home-service[data-service="sdk-shop"]`
	b.waitText(row, "sdk-shop")
	b.screenshot("flow-home")
	// The service's dumps link lists its issues.
	b.run(clickJS(`[...document.querySelectorAll('` + row + ` .home-links a')].find(a => a.textContent === 'dumps')`))
	issueRow := fmt.Sprintf(`tr[data-issue=%q]`, is.ID)
	b.waitText(issueRow, is.Title)
	if loc := b.location(); !strings.Contains(loc, "#/dumps?") || !strings.Contains(loc, "service=sdk-shop") {
		t.Errorf("the service's dumps link led to %s", loc)
	}
	b.screenshot("flow-service-issues")
	// The issue, then its goroutines: the crashed one open, with the
	// handler's frame.
	b.clickText(issueRow+" a.dumps-title", is.Title)
	b.waitText(".dumps-goroutines", "Goroutines")
	b.waitText(".dumps-goroutine.crashed summary", "chargeOrder")
	var open bool
	b.eval(`document.querySelector('.dumps-goroutine.crashed').open === true`, &open)
	if !open {
		t.Errorf("the crashed goroutine is not open on the issue's page")
	}
	b.waitText(".dumps-goroutines", "parkedWorker")
	b.screenshot("flow-issue-goroutines")
	b.noConsoleErrors()
}

// TestUIFlowTraceToProfile: from a span to its service's CPU profile over
// the span's time.
func TestUIFlowTraceToProfile(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	base := time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond)
	u := &uiTracers{t: t, p: p, tps: map[string]*sdktrace.TracerProvider{}}
	checkout := u.checkout(base)
	u.shutdown()
	traceID := checkout.TraceID().String()
	// The frontend's CPU profile covering the request.
	pushProfile(t, p, "frontend.cpu{env=e2e}", base.Add(-2*time.Second), uiCPUProfile(t, base.Add(-2*time.Second), 300, 100))
	eventually(t, 30*time.Second, "the trace and the profile are stored", func() (bool, string) {
		code, _, _ := p.get("/api/traces/" + traceID)
		n := metric(t, p.query, "vigil_profilestore_profiles")
		return code == 200 && n >= 1, fmt.Sprintf("trace %d, %v profiles", code, n)
	})

	b := newBrowser(t)
	b.open("http://" + p.query + "/#/trace/" + traceID)
	b.waitText(".trace-summary", "8 spans")
	b.clickText(".wf-sel", "GET /checkout")
	b.click(".trace-profile-link")
	b.waitText(".fg", "shop/checkout.computeTax")
	b.waitText(".fg-table", "shop/checkout.renderInvoice")
	if loc := b.location(); !strings.Contains(loc, "#/profiles?") || !strings.Contains(loc, "frontend") {
		t.Errorf("the span's profile link led to %s", loc)
	}
	b.screenshot("flow-trace-profile")
	b.noConsoleErrors()
}
