//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUILogs drives the Logs page on an all-in-one seeded through Loki's
// push API: lines of two services with levels, one with a trace id in its
// structured metadata and one with a trace id in its logfmt body.
func TestUILogs(t *testing.T) {
	p := startAllInOne(t, filepath.Join(t.TempDir(), "data"))
	const (
		traceMeta = "4bf92f3577b34da6a3ce929d0e0e4736"
		traceLine = "0af7651916cd43dd8448eb211c80319c"
	)
	now := time.Now()
	ts := func(ago time.Duration) string { return fmt.Sprint(now.Add(-ago).UnixNano()) }
	seed := `{"streams":[
 {"stream":{"service_name":"checkout","level":"error","env":"staging"},"values":[
   ["` + ts(3*time.Minute) + `","payment declined for order 1001",{"trace_id":"` + traceMeta + `","span_id":"00f067aa0ba902b7"}]]},
 {"stream":{"service_name":"checkout","level":"info","env":"staging"},"values":[
   ["` + ts(4*time.Minute) + `","order 1002 placed"]]},
 {"stream":{"service_name":"checkout","env":"staging"},"values":[
   ["` + ts(2*time.Minute) + `","level=warn msg=\"slow upstream\" trace_id=` + traceLine + `"]]},
 {"stream":{"service_name":"frontend","level":"info","env":"prod"},"values":[
   ["` + ts(90*time.Second) + `","GET /cart 200"]]}]}`
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(seed)); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	// 1,000 lines of one service, for the time the page takes to show
	// a thousand rows.
	var bulk strings.Builder
	bulk.WriteString(`{"streams":[{"stream":{"service_name":"bulk","env":"prod"},"values":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			bulk.WriteString(",")
		}
		fmt.Fprintf(&bulk, `["%d","level=info msg=\"bulk line %04d\" user=u%d trace_id=%032x"]`, now.Add(-5*time.Minute+time.Duration(i)*time.Millisecond).UnixNano(), i, i%7, i+1)
	}
	bulk.WriteString("]}]}")
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(bulk.String())); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "the seeded lines are queryable", func() (bool, string) {
		n, m := p.countLines(`{service=~"checkout|frontend"}`, 100), p.countLines(`{service="bulk"}`, 2000)
		return n == 4 && m == 1000, fmt.Sprintf("%d lines, %d bulk lines", n, m)
	})

	base := "http://" + p.query + "/"
	logs := func(params ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(params); i += 2 {
			v.Set(params[i], params[i+1])
		}
		return base + "#/logs?" + v.Encode()
	}
	b := newBrowser(t)
	var s string

	// The lines of a query, newest first, with the volume by level.
	b.open(logs("query", `{service="checkout"}`, "from", "now-15m", "to", "now"))
	b.waitText("#logs-results", "payment declined for order 1001")
	b.waitText("#logs-results", "order 1002 placed")
	b.waitText("#logs-status", "3 lines")
	var ready float64
	b.run(chromedp.Poll(`(performance.getEntriesByName('logs-ready')[0] || {}).startTime`, &ready, chromedp.WithPollingTimeout(10*time.Second)))
	var api float64
	b.run(chromedp.Evaluate(`Math.max(...performance.getEntriesByType('resource').filter(e => e.name.includes('/loki/api/v1/query_range')).map(e => e.duration))`, &api))
	t.Logf("Logs page: results shown %.0f ms after navigation (slowest query_range %.0f ms)", ready, api)
	if got := b.logsLines(); len(got) != 3 || !strings.Contains(got[0], "slow upstream") || got[2] != "order 1002 placed" {
		t.Errorf("lines newest first: got %q", got)
	}
	b.waitText("#logs-volume .legend", "error")
	b.waitText("#logs-volume .legend", "warn")
	b.waitText("#logs-volume .legend", "info")
	var bars int
	b.run(chromedp.Evaluate(`document.querySelectorAll('#logs-volume svg rect').length`, &bars))
	if bars < 3 {
		t.Errorf("volume histogram: %d bars; want one per level at least", bars)
	}
	b.screenshot("logs-results")

	// Clicking a bar narrows the range to its step: the error line alone.
	b.click(`#logs-volume rect[fill="var(--err)"]`)
	b.waitText("#logs-status", "1 line")
	if got := b.logsLines(); len(got) != 1 || got[0] != "payment declined for order 1001" {
		t.Errorf("after a click on the error bar: %q", got)
	}
	if loc := b.location(); !regexp.MustCompile(`from=\d{13}&`).MatchString(loc) || !regexp.MustCompile(`to=\d{13}`).MatchString(loc) {
		t.Errorf("the narrowed range is not in the URL: %s", loc)
	}
	b.screenshot("logs-narrowed")
	b.run(chromedp.NavigateBack())
	b.waitText("#logs-status", "3 lines")

	// Trace links: from structured metadata and from the line itself.
	if got := b.logsTraceHref("payment declined"); got != "#/trace/"+traceMeta {
		t.Errorf("trace link of the line with trace_id metadata: %q", got)
	}
	if got := b.logsTraceHref("slow upstream"); got != "#/trace/"+traceLine {
		t.Errorf("trace link of the line with a trace id in its body: %q", got)
	}
	if got := b.logsTraceHref("order 1002"); got != "" {
		t.Errorf("a line without a trace id has a trace link: %q", got)
	}

	// Expanding a line shows its stream labels and structured metadata.
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('.logs-row')].find(r => r.textContent.includes('payment declined')).querySelector('.logs-toggle').setAttribute('id', 'e2e-toggle')`, nil))
	b.click("#e2e-toggle")
	b.waitText(".logs-row.open .logs-details", "Structured metadata")
	b.run(chromedp.Evaluate(`document.querySelector('.logs-row.open .logs-details').textContent`, &s))
	for _, want := range []string{"Stream labels", "service", "checkout", "env", "staging", "trace_id", traceMeta, "span_id", "00f067aa0ba902b7", "detected_level", "error"} {
		if !strings.Contains(s, want) {
			t.Errorf("expanded line lacks %q: %q", want, s)
		}
	}
	b.screenshot("logs-expanded")

	// A field's "+" keeps the lines with that value.
	b.click(`.logs-row.open button[aria-label="filter span_id=\"00f067aa0ba902b7\""]`)
	b.waitText("#logs-status", "1 line")
	b.run(chromedp.Value("#logs-query", &s, chromedp.ByQuery))
	if s != `{service="checkout"} | span_id="00f067aa0ba902b7"` {
		t.Errorf("the query after filtering on a field: %q", s)
	}
	b.run(chromedp.NavigateBack())
	b.waitText("#logs-status", "3 lines")

	// The order and limit are in the URL, and a reload of it shows the same.
	b.run(chromedp.SetValue("#logs-direction", "forward", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#logs-direction').dispatchEvent(new Event('change'))`, nil))
	b.run(chromedp.Poll(`document.querySelector('#logs-results .logs-line')?.textContent === 'order 1002 placed'`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	deep := b.location()
	if !strings.Contains(deep, "direction=forward") || !strings.Contains(deep, "limit=100") || !strings.Contains(deep, "from=now-15m") {
		t.Errorf("the URL does not hold the view: %s", deep)
	}
	b.run(chromedp.Navigate("about:blank"))
	b.open(deep)
	b.waitText("#logs-status", "3 lines")
	b.run(chromedp.Poll(`(performance.getEntriesByName('logs-ready')[0] || {}).startTime`, &ready, chromedp.WithPollingTimeout(10*time.Second)))
	t.Logf("Logs page, reloaded from its link: results shown %.0f ms after navigation", ready)
	b.click("#theme")
	b.screenshot("logs-dark")
	b.click("#theme")
	if got := b.logsLines(); len(got) != 3 || got[0] != "order 1002 placed" || !strings.Contains(got[2], "slow upstream") {
		t.Errorf("the deep link reloaded shows %q; want the oldest first", got)
	}
	var dir, q string
	b.run(chromedp.Value("#logs-direction", &dir, chromedp.ByQuery), chromedp.Value("#logs-query", &q, chromedp.ByQuery))
	if dir != "forward" || q != `{service="checkout"}` {
		t.Errorf("the reloaded form: direction %q, query %q", dir, q)
	}

	// The link the trace page makes to a trace's logs (logsLink with a
	// fixed range in epoch ms) shows that trace's lines only.
	from, to := fmt.Sprint(now.Add(-10*time.Minute).UnixMilli()), fmt.Sprint(now.Add(time.Minute).UnixMilli())
	for _, tq := range []string{`{service="checkout"} | trace_id="` + traceMeta + `"`, `{service="checkout"} |= "` + traceLine + `"`} {
		b.run(chromedp.Navigate("about:blank"))
		b.open(logs("query", tq, "from", from, "to", to))
		b.waitText("#logs-status", "1 line")
		want := map[bool]string{true: "payment declined", false: "slow upstream"}[strings.Contains(tq, traceMeta)]
		if got := b.logsLines(); len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("%s: got %q; want the line %q", tq, got, want)
		}
	}

	// Completion: label values, narrowed by the matchers already written.
	b.run(chromedp.Navigate("about:blank"))
	b.open(base + "#/logs")
	b.waitText("#logs-results", "Write a LogQL query")
	b.run(chromedp.SendKeys("#logs-query", `{`, chromedp.ByQuery))
	b.waitText("#logs-complete", "service")
	b.waitText("#logs-complete", "env")
	b.run(chromedp.SendKeys("#logs-query", `service="`, chromedp.ByQuery))
	b.waitText("#logs-complete", "checkout")
	b.waitText("#logs-complete", "frontend")
	b.screenshot("logs-completion")
	b.run(chromedp.Evaluate(`document.querySelector('#logs-query').value = ''`, nil), chromedp.SendKeys("#logs-query", `{env="prod", service="`, chromedp.ByQuery))
	b.waitText("#logs-complete", "frontend")
	if s = b.text("#logs-complete"); strings.Contains(s, "checkout") {
		t.Errorf("values for service with env=prod: %q; checkout has no prod line", s)
	}
	b.waitText("#logs-complete", "bulk")
	b.run(chromedp.SendKeys("#logs-query", "fr", chromedp.ByQuery))
	b.run(chromedp.Poll(`document.querySelector('#logs-complete').textContent === 'frontend'`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	b.run(chromedp.SendKeys("#logs-query", "\t}\r", chromedp.ByQuery))
	b.waitText("#logs-results", "GET /cart 200")
	b.run(chromedp.Value("#logs-query", &q, chromedp.ByQuery))
	if q = strings.TrimSpace(q); q != `{env="prod", service="frontend"}` {
		t.Errorf("the completed query: %q", q)
	}

	// A metric query draws a chart.
	b.open(logs("query", `sum by (service) (count_over_time({service=~"checkout|frontend"}[1m]))`, "from", "now-15m", "to", "now"))
	b.waitText("#logs-chart .legend", `service="checkout"`)
	b.waitText("#logs-chart .legend", `service="frontend"`)
	b.waitText("#logs-status", "2 series")
	b.screenshot("logs-metric")

	// Bad LogQL shows the API's own error.
	code, apiErr, _ := p.queryRange(`{service=`)
	if code != 400 {
		t.Fatalf("bad query: %d %s", code, apiErr)
	}
	b.open(logs("query", `{service=`))
	b.waitText("#logs-results .error", strings.TrimSpace(apiErr))
	b.screenshot("logs-bad-query")

	// Live tail shows a line written after it opened.
	b.open(logs("query", `{service="tailsvc"}`, "from", "now-5m"))
	b.waitText("#logs-results", "No line matches")
	b.click("#logs-live")
	b.waitText("#logs-tail-state", "Following")
	nonce := fmt.Sprintf("tailed line %d", time.Now().UnixNano())
	live := `{"streams":[{"stream":{"service_name":"tailsvc","level":"info"},"values":[["` + fmt.Sprint(time.Now().UnixNano()) + `","` + nonce + `"]]}]}`
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(live)); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	b.waitText("#logs-tail", nonce)
	b.screenshot("logs-live")
	// The page keeps the newest 500 lines of a tail.
	var burst strings.Builder
	burst.WriteString(`{"streams":[{"stream":{"service_name":"tailsvc","level":"debug"},"values":[`)
	for i := 0; i < 600; i++ {
		if i > 0 {
			burst.WriteString(",")
		}
		fmt.Fprintf(&burst, `["%d","burst line %03d"]`, time.Now().UnixNano()+int64(i), i)
	}
	burst.WriteString("]}]}")
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(burst.String())); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	b.waitText("#logs-tail-state", "601 lines received")
	var tailRows int
	var newest string
	b.run(chromedp.Evaluate(`document.querySelectorAll('#logs-tail .logs-row').length`, &tailRows),
		chromedp.Evaluate(`document.querySelector('#logs-tail .logs-line').textContent`, &newest))
	if tailRows != 500 || newest != "burst line 599" {
		t.Errorf("tail after 601 lines: %d rows kept, newest %q; want 500, burst line 599", tailRows, newest)
	}
	b.click("#logs-live")
	b.waitText("#logs-tail-state", "Stopped")

	// A thousand lines, in the dark theme.
	b.run(chromedp.Navigate("about:blank"))
	b.open(logs("query", `{service="bulk"}`, "from", "now-15m", "to", "now", "limit", "1000"))
	b.waitText("#logs-status", "1,000 lines")
	b.run(chromedp.Poll(`(performance.getEntriesByName('logs-ready')[0] || {}).startTime`, &ready, chromedp.WithPollingTimeout(10*time.Second)))
	b.run(chromedp.Evaluate(`Math.max(...performance.getEntriesByType('resource').filter(e => e.name.includes('/loki/api/v1/query_range')).map(e => e.duration))`, &api))
	var all float64
	b.run(chromedp.Poll(`(performance.getEntriesByName('logs-rendered').pop() || {}).startTime`, &all, chromedp.WithPollingTimeout(10*time.Second)))
	t.Logf("Logs page, 1,000 lines: shown %.0f ms after navigation (rows built by %.0f ms; slowest query_range %.0f ms)", ready, all, api)
	if got := b.logsLinesCount(); got != 1000 {
		t.Errorf("rows for 1,000 lines: %d", got)
	}

	b.noConsoleErrors(regexp.MustCompile(`status of 400`))
}

// logsLines returns the lines the Logs page shows, in order.
func (b *browser) logsLines() []string {
	b.t.Helper()
	var out []string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('#logs-results .logs-line')].map(e => e.textContent)`, &out))
	return out
}

// logsLinesCount returns the number of rows the Logs page shows.
func (b *browser) logsLinesCount() int {
	b.t.Helper()
	var n int
	b.run(chromedp.Evaluate(`document.querySelectorAll('#logs-results .logs-row').length`, &n))
	return n
}

// logsTraceHref returns the trace link of the line containing text ("" if
// none).
func (b *browser) logsTraceHref(text string) string {
	b.t.Helper()
	var href string
	b.run(chromedp.Evaluate(fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('.logs-row')].find(r => r.textContent.includes(%q)); const a = r && r.querySelector('a.logs-trace'); return a ? a.getAttribute('href') : '' })()`, text), &href))
	return href
}
