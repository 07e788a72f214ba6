//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// uiTracers is one OpenTelemetry SDK tracer provider per service, each
// exporting over OTLP/HTTP to the all-in-one's collector.
type uiTracers struct {
	t   *testing.T
	p   *proc
	tps map[string]*sdktrace.TracerProvider
}

func (u *uiTracers) tracer(service string) trace.Tracer {
	if tp, ok := u.tps[service]; ok {
		return tp.Tracer("ui-e2e")
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(u.p.collector), otlptracehttp.WithInsecure())
	if err != nil {
		u.t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service), attribute.String("host.name", service+"-host-1"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(20000), sdktrace.WithMaxExportBatchSize(1000), sdktrace.WithBlocking()))
	u.tps[service] = tp
	return tp.Tracer("ui-e2e")
}

func (u *uiTracers) shutdown() {
	for svc, tp := range u.tps {
		if err := tp.Shutdown(context.Background()); err != nil {
			u.t.Fatalf("OpenTelemetry SDK of %s could not export: %v", svc, err)
		}
	}
}

// span starts and ends a span of service at base+from..base+to (ms).
func (u *uiTracers) span(ctx context.Context, service, name string, kind trace.SpanKind, base time.Time, from, to float64, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ms := func(v float64) time.Time { return base.Add(time.Duration(v * float64(time.Millisecond))) }
	ctx, sp := u.tracer(service).Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(ms(from)), trace.WithAttributes(attrs...))
	defer sp.End(trace.WithTimestamp(ms(to)))
	return ctx, sp
}

// checkout sends the checkout trace of seedUITraces starting at base.
func (u *uiTracers) checkout(base time.Time) trace.SpanContext {
	rootCtx, root := u.tracer("frontend").Start(context.Background(), "GET /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base),
		trace.WithAttributes(attribute.String("http.route", "/checkout"), attribute.String("customer.tier", "gold"), attribute.Int("items", 3)))
	root.AddEvent("cart loaded", trace.WithTimestamp(base.Add(61*time.Millisecond)), trace.WithAttributes(attribute.Int("lines", 2)))
	u.span(rootCtx, "frontend", "cache lookup", trace.SpanKindInternal, base, 1, 3)
	func() {
		c, sp := u.tracer("frontend").Start(rootCtx, "call cart", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(5*time.Millisecond)))
		defer sp.End(trace.WithTimestamp(base.Add(60 * time.Millisecond)))
		u.span(c, "cart", "GetCart", trace.SpanKindServer, base, 6, 59)
	}()
	func() {
		c, sp := u.tracer("frontend").Start(rootCtx, "call payment", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(35*time.Millisecond)))
		defer sp.End(trace.WithTimestamp(base.Add(95 * time.Millisecond)))
		c, charge := u.tracer("payment").Start(c, "Charge", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base.Add(36*time.Millisecond)))
		charge.SetStatus(codes.Error, "card declined")
		defer charge.End(trace.WithTimestamp(base.Add(94 * time.Millisecond)))
		c, bank := u.tracer("payment").Start(c, "call bank", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(40*time.Millisecond)))
		defer bank.End(trace.WithTimestamp(base.Add(90 * time.Millisecond)))
		u.span(c, "bank", "Authorize", trace.SpanKindServer, base, 41, 89)
	}()
	root.End(trace.WithTimestamp(base.Add(100 * time.Millisecond)))
	return root.SpanContext()
}

// seedUITraces sends, through OTLP/HTTP:
//   - checkout: frontend GET /checkout (0–100 ms) with a cache lookup
//     (1–3 ms), a call to cart (5–60 ms, cart GetCart 6–59) in parallel with
//     a call to payment (35–95 ms, payment Charge 36–94, failed), which calls
//     bank (40–90, bank Authorize 41–89). Its critical path is the root, the
//     cache lookup, and the payment chain: 6 of the 8 spans; the cart
//     call ends after the payment call started and is off the path.
//   - health: frontend GET /health (0–2 ms), alone.
//   - bulk: 10,000 spans of service bulk, a root with 99 children of 100
//     children each.
func seedUITraces(t *testing.T, p *proc, base time.Time) (checkout, health, bulk trace.SpanContext) {
	u := &uiTracers{t: t, p: p, tps: map[string]*sdktrace.TracerProvider{}}
	ctx := context.Background()

	checkout = u.checkout(base)

	_, hs := u.span(ctx, "frontend", "GET /health", trace.SpanKindServer, base.Add(10*time.Second), 0, 2)
	health = hs.SpanContext()

	bulkBase := base.Add(20 * time.Second)
	bctx, broot := u.tracer("bulk").Start(ctx, "batch", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(bulkBase))
	for i := 0; i < 99; i++ {
		c, sp := u.tracer("bulk").Start(bctx, fmt.Sprintf("shard %d", i), trace.WithTimestamp(bulkBase.Add(time.Duration(i)*10*time.Millisecond)))
		for k := 0; k < 100; k++ {
			from := float64(i*10) + float64(k)*0.1
			u.span(c, "bulk", fmt.Sprintf("item %d.%d", i, k), trace.SpanKindInternal, bulkBase, from, from+0.09)
		}
		sp.End(trace.WithTimestamp(bulkBase.Add(time.Duration(i)*10*time.Millisecond + 10*time.Millisecond)))
	}
	broot.End(trace.WithTimestamp(bulkBase.Add(1000 * time.Millisecond)))
	bulk = broot.SpanContext()
	u.shutdown()
	return checkout, health, bulk
}

// hrefQuery reads the parameters of a UI link such as #/logs?query=…&from=….
func hrefQuery(t *testing.T, href, page string) url.Values {
	t.Helper()
	prefix := "#/" + page + "?"
	if !strings.HasPrefix(href, prefix) {
		t.Fatalf("link %q: want it to start with %q", href, prefix)
	}
	v, err := url.ParseQuery(strings.TrimPrefix(href, prefix))
	if err != nil {
		t.Fatalf("link %q: %v", href, err)
	}
	return v
}

// TestUITraces: the Traces pages on an all-in-one seeded through OTLP:
// the search with its scatter, the trace's waterfall with the critical
// path and span details, the links to the span's logs and profile, a
// trace of 10,000 spans (its render time logged), the dependency graph
// with the span metrics on its edges, and an unknown trace id.
func TestUITraces(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	base := time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond)
	checkout, health, bulk := seedUITraces(t, p, base)
	p.getTrace(checkout.TraceID().String(), 8)
	p.getTrace(health.TraceID().String(), 1)
	p.getTrace(bulk.TraceID().String(), 10000)
	ui := "http://" + p.query + "/"
	b := newBrowser(t)

	// Search: the service's two traces, then a tag filter keeps checkout.
	b.open(ui + "#/traces?service=frontend&from=now-1h&to=now")
	b.waitText(".traces-out", "2 traces")
	b.waitText(".traces-table", "GET /health")
	b.waitText(".traces-table", "GET /checkout")
	var searchMs float64
	b.run(chromedp.Evaluate(`performance.now()`, &searchMs))
	t.Logf("search page: results shown %.0f ms after the page started loading", searchMs)
	b.screenshot("traces-search")
	var circles int
	b.run(chromedp.Evaluate(`document.querySelectorAll('.traces-scatter circle').length`, &circles))
	if circles != 2 {
		t.Errorf("scatter has %d dots; want 2", circles)
	}
	b.open(ui + "#/traces?service=frontend&tags=" + url.QueryEscape("customer.tier=gold") + "&from=now-1h&to=now")
	b.waitText(".traces-out", "1 trace")
	b.waitText(".traces-table", "8") // span count
	b.waitText(".traces-table", "GET /checkout")
	if got := b.text(".traces-table tbody"); strings.Contains(got, "GET /health") {
		t.Errorf("tag search customer.tier=gold listed GET /health: %q", got)
	}
	// A bad tag filter and a bad duration show what is wrong.
	b.open(ui + "#/traces?service=frontend&minDuration=fast")
	b.waitText(".error", "parameter minDuration")

	// Clicking the scatter's dot opens the waterfall.
	b.open(ui + "#/traces?service=frontend&tags=" + url.QueryEscape("customer.tier=gold") + "&from=now-1h&to=now")
	b.waitText(".traces-out", "1 trace")
	b.click(".traces-scatter circle")
	b.waitText(".trace-summary", "8 spans")
	if loc := b.location(); !strings.Contains(loc, "#/trace/"+checkout.TraceID().String()) {
		t.Errorf("the scatter's dot led to %s; want the checkout trace", loc)
	}
	b.waitText(".trace-summary", "1 error")
	b.waitText(".trace-summary", "critical path: 6 spans")
	var cp []string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('.wf-row.wf-cp .wf-sel')].map(e => e.textContent)`, &cp))
	want := []string{"frontend GET /checkout", "frontend cache lookup", "frontend call payment", "payment Charge error", "payment call bank", "bank Authorize"}
	if strings.Join(cp, "|") != strings.Join(want, "|") {
		t.Errorf("critical path rows %q; want %q", cp, want)
	}
	var errRows []string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('.wf-row.wf-err .wf-sel')].map(e => e.textContent)`, &errRows))
	if len(errRows) != 1 || !strings.Contains(errRows[0], "Charge") {
		t.Errorf("rows marked as errors: %q; want Charge", errRows)
	}
	// Collapsing call payment hides its 3 descendants.
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('.wf-row')].find(r => r.textContent.includes('call payment')).querySelector('.wf-tog').click()`, nil))
	var visible int
	b.run(chromedp.Evaluate(`document.querySelectorAll('.wf-body .wf-row').length`, &visible))
	if visible != 5 {
		t.Errorf("%d rows visible after collapsing call payment; want 5", visible)
	}
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('.wf-row')].find(r => r.textContent.includes('call payment')).querySelector('.wf-tog').click()`, nil))

	// The keyboard walks the rows: ↓ from the root reaches the cache lookup.
	var focused string
	b.run(chromedp.Focus(".wf-row .wf-sel", chromedp.ByQuery), chromedp.KeyEvent(kb.ArrowDown),
		chromedp.Evaluate(`document.activeElement.textContent`, &focused))
	if focused != "frontend cache lookup" {
		t.Errorf("↓ from the root focused %q; want the cache lookup", focused)
	}

	// Span details: the root's tags, event and process, and its links.
	b.clickText(".wf-sel", "GET /checkout")
	b.waitText(".trace-detail .span-tags", "customer.tier")
	b.waitText(".trace-detail .span-tags", "gold")
	b.waitText(".trace-detail", "cart loaded")
	b.waitText(".trace-detail", "frontend-host-1")
	if loc := b.location(); !strings.Contains(loc, "span="+checkout.SpanID().String()) {
		t.Errorf("after choosing the root span the address is %s; want span=%s", loc, checkout.SpanID())
	}
	b.screenshot("trace-waterfall")
	var logsHref, profHref string
	b.run(chromedp.AttributeValue(".trace-logs-link", "href", &logsHref, nil, chromedp.ByQuery),
		chromedp.AttributeValue(".trace-profile-link", "href", &profHref, nil, chromedp.ByQuery))
	startMs, endMs := base.UnixMilli(), base.Add(100*time.Millisecond).UnixMilli()
	lq := hrefQuery(t, logsHref, "logs")
	if want := fmt.Sprintf(`{service_name="frontend"} |= "%s"`, checkout.TraceID()); lq.Get("query") != want {
		t.Errorf("logs link query %q; want %q", lq.Get("query"), want)
	}
	if lq.Get("from") != strconv.FormatInt(startMs-30000, 10) || lq.Get("to") != strconv.FormatInt(endMs+30000, 10) {
		t.Errorf("logs link range %s–%s; want the span's %d–%d ± 30 s", lq.Get("from"), lq.Get("to"), startMs, endMs)
	}
	pq := hrefQuery(t, profHref, "profiles")
	if want := `cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="frontend"}`; pq.Get("query") != want {
		t.Errorf("profile link query %q; want %q", pq.Get("query"), want)
	}
	if pq.Get("from") != strconv.FormatInt(startMs-15000, 10) || pq.Get("to") != strconv.FormatInt(endMs+15000, 10) {
		t.Errorf("profile link range %s–%s; want the span's %d–%d ± 15 s", pq.Get("from"), pq.Get("to"), startMs, endMs)
	}
	// The deep link with ?span= reproduces the selection.
	b.run(chromedp.Navigate("about:blank"))
	b.open(ui + "#/trace/" + checkout.TraceID().String() + "?span=" + checkout.SpanID().String())
	b.waitText(".trace-detail", "customer.tier")
	b.run(chromedp.Evaluate(`document.documentElement.dataset.theme = 'dark'`, nil))
	b.screenshot("trace-waterfall-dark")
	b.run(chromedp.Evaluate(`document.documentElement.dataset.theme = 'light'`, nil))

	// 10,000 spans: rendered, and how long it took.
	bulkID := bulk.TraceID().String()
	b.run(chromedp.Navigate("about:blank"))
	b.open(ui + "#/trace/" + bulkID)
	b.waitText(".trace-summary", "10000 spans")
	b.run(chromedp.Poll(`document.querySelector('.wf') && document.querySelector('.wf').dataset.renderMs`, nil,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	var timing struct {
		Rows    string
		Drawn   int
		Build   string
		Render  string
		FetchMs float64
	}
	b.run(chromedp.Evaluate(fmt.Sprintf(`(() => { const wf = document.querySelector('.wf');
		const r = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/traces/%s')).pop();
		return {Rows: wf.dataset.rows, Drawn: wf.querySelectorAll('.wf-body .wf-row').length, Build: wf.dataset.buildMs, Render: wf.dataset.renderMs, FetchMs: r ? r.duration : -1} })()`, bulkID), &timing))
	if timing.Rows != "10000" || timing.Drawn == 0 || timing.Drawn >= 10000 {
		t.Errorf("the 10,000-span trace has %s rows, %d drawn; want 10000, the viewport's drawn", timing.Rows, timing.Drawn)
	}
	t.Logf("10,000-span trace: fetch %.0f ms; model, critical path and rows in %s ms, then laid out and painted: %s ms (%d rows in the DOM)",
		timing.FetchMs, timing.Build, timing.Render, timing.Drawn)
	// Scrolling to the end draws the last rows.
	b.run(chromedp.Evaluate(`(() => { const b = document.querySelector('.wf-body'); b.scrollTop = b.scrollHeight; })()`, nil))
	b.waitText(".wf-body", "item 98.99")
	b.screenshot("trace-10000-spans")

	// Unknown trace id: the API's message.
	b.open(ui + "#/trace/0123456789abcdef0123456789abcdef")
	b.waitText(".error", "trace not found")
	b.screenshot("trace-not-found")

	// The dependency graph: once the span metrics are in the TSDB (written
	// every 15 s; a rate needs two writes), the edges carry them.
	// A counter's first sample has no rate: once the edges are in the TSDB,
	// a second checkout moves them.
	edge := `sum(vigil_dependency_calls_total{parent="frontend",child="payment"})`
	eventually(t, 60*time.Second, "the edges in PromQL", func() (bool, string) {
		v := promQuery(t, "http://"+p.query, edge, time.Now())
		return v == "1", edge + " = " + v
	})
	u := &uiTracers{t: t, p: p, tps: map[string]*sdktrace.TracerProvider{}}
	u.checkout(time.Now().Add(-time.Second))
	u.shutdown()
	eventually(t, 60*time.Second, "the edges' rates in PromQL", func() (bool, string) {
		v := promQuery(t, "http://"+p.query, `sum(rate(vigil_dependency_calls_total{parent="frontend",child="payment"}[1h]))`, time.Now())
		f, _ := strconv.ParseFloat(v, 64)
		return f > 0, v
	})
	b.open(ui + "#/traces?view=graph&from=now-1h&to=now")
	b.waitText(".dep-graph", "frontend")
	b.waitText(".dep-graph", "bank")
	var edges []string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('.dep-table tbody tr')].map(r => [...r.cells].map(c => c.textContent).join(' '))`, &edges))
	got := strings.Join(edges, "\n")
	for _, re := range []string{`frontend cart 2 \S+ 0% \S+`, `frontend payment 2 \S+ 100% \S+`, `payment bank 2 \S+ 0% \S+`} {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("dependency table:\n%s\nwant a row matching %s", got, re)
		}
	}
	var labels []string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll('.dep-graph .dg-label')].map(e => [...e.children].map(t => t.textContent).join(' · '))`, &labels))
	if len(labels) != 3 || !strings.Contains(strings.Join(labels, "|"), "/s · 100% err · p99") {
		t.Errorf("edge labels %q; want 3 with rate, error ratio and p99", labels)
	}
	b.screenshot("traces-dependency-graph")

	b.noConsoleErrors(regexp.MustCompile(`status of 404`), regexp.MustCompile(`status of 400`))
}
