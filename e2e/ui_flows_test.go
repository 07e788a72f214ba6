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
