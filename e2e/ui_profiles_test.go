//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/pprof/profile"
)

// uiCPUProfile is a CPU profile of service uishop whose two stacks,
// main → HandleOrder → computeTax and main → HandleOrder → renderInvoice,
// took tax and render samples of 10 ms.
func uiCPUProfile(t *testing.T, at time.Time, tax, render int64) []byte {
	t.Helper()
	fn := func(id uint64, name string) *profile.Function {
		return &profile.Function{ID: id, Name: name, SystemName: name, Filename: "shop/checkout/checkout.go"}
	}
	main, handle, taxFn, renderFn := fn(1, "main.main"), fn(2, "shop/checkout.HandleOrder"), fn(3, "shop/checkout.computeTax"), fn(4, "shop/checkout.renderInvoice")
	loc := func(id uint64, f *profile.Function, line int64) *profile.Location {
		return &profile.Location{ID: id, Address: 0x1000 * id, Line: []profile.Line{{Function: f, Line: line}}}
	}
	lMain, lHandle, lTax, lRender := loc(1, main, 10), loc(2, handle, 20), loc(3, taxFn, 30), loc(4, renderFn, 40)
	const period = int64(10 * time.Millisecond)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: period,
		TimeNanos: at.UnixNano(), DurationNanos: int64(10 * time.Second),
		Sample: []*profile.Sample{
			{Location: []*profile.Location{lTax, lHandle, lMain}, Value: []int64{tax, tax * period}},
			{Location: []*profile.Location{lRender, lHandle, lMain}, Value: []int64{render, render * period}},
		},
		Location: []*profile.Location{lMain, lHandle, lTax, lRender},
		Function: []*profile.Function{main, handle, taxFn, renderFn},
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pushProfile sends a pprof to the profiler's Pyroscope ingest endpoint.
func pushProfile(t *testing.T, p *proc, name string, at time.Time, pprof []byte) {
	t.Helper()
	u := "http://" + p.profiler + "/ingest?" + url.Values{"name": {name}, "from": {fmt.Sprint(at.Unix())}, "format": {"pprof"}}.Encode()
	resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(pprof))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /ingest: %s %s", resp.Status, body)
	}
}

// connectError posts a querier request and returns the connect error's
// message (the API's own words for a bad request).
func connectError(t *testing.T, p *proc, method, body string) string {
	t.Helper()
	resp, err := http.Post("http://"+p.query+"/querier.v1.QuerierService/"+method, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode == http.StatusOK || e.Message == "" {
		t.Fatalf("%s %s: %s %v; want a connect error", method, body, resp.Status, err)
	}
	return e.Message
}

// readyAfter opens url in a fresh document and returns how long the page
// took, from the navigation's start, to mark itself ready (mark), with
// when the shell's modules had loaded (DOMContentLoaded) and when the
// last API answer (a request under apiPrefix) arrived, for the log.
func (b *browser) readyAfter(url, mark, apiPrefix string) (ready time.Duration, detail string) {
	b.t.Helper()
	b.run(chromedp.Navigate("about:blank"))
	b.open(url)
	var ms float64
	js := fmt.Sprintf(`(() => { const m = performance.getEntriesByName(%q); return m.length ? m[0].startTime : 0 })()`, mark)
	b.run(chromedp.Poll(js, &ms, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second)))
	var t struct{ DCL, API float64 }
	b.eval(fmt.Sprintf(`({dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
		api: Math.max(0, ...performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname.startsWith(%q)).map(e => e.responseEnd))})`, apiPrefix), &t)
	return time.Duration(ms * float64(time.Millisecond)), fmt.Sprintf("shell loaded at %.0f ms, last API answer at %.0f ms, ready at %.0f ms", t.DCL, t.API, ms)
}

// attr returns an attribute of the first element matching sel.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	var v string
	var ok bool
	b.run(chromedp.AttributeValue(sel, name, &v, &ok, chromedp.ByQuery))
	return v
}

// TestUIProfiles pushes two CPU profiles of a service ten minutes apart
// through the profiler's Pyroscope intake and checks the Profiles page:
// the link the Traces page builds (Pyroscope's process_cpu type) shows the
// flame graph with the seeded functions and the top table, a click zooms
// into a frame, the table sorts, the diff of the two ranges colours the
// function that grew, pprof's web UI answers at the page's link, and a bad
// selector shows the querier's own error.
func TestUIProfiles(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	now := time.Now()
	tA, tB := now.Add(-10*time.Minute), now.Add(-time.Minute)
	pushProfile(t, p, "uishop.cpu{env=e2e}", tA, uiCPUProfile(t, tA, 100, 300))
	pushProfile(t, p, "uishop.cpu{env=e2e}", tB, uiCPUProfile(t, tB, 400, 100))
	eventually(t, 30*time.Second, "both profiles stored", func() (bool, string) {
		n := metric(t, p.query, "vigil_profilestore_profiles")
		return n >= 2, fmt.Sprintf("%v profiles stored", n)
	})

	b := newBrowser(t)
	base := "http://" + p.query + "/"
	// The Traces page's link: profilesLink({query, from, to}).
	q := `process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="uishop"}`
	page := base + "#/profiles?" + url.Values{"query": {q}, "from": {"now-1h"}, "to": {"now"}}.Encode()
	_, detail := b.readyAfter(page, "vigil-profiles-ready", "/querier.v1.")
	t.Logf("Profiles page interactive (flame graph and top table drawn): %s", detail)
	b.waitText(".fg", "shop/checkout.computeTax")
	for _, fn := range []string{"main.main", "shop/checkout.HandleOrder", "shop/checkout.computeTax", "shop/checkout.renderInvoice"} {
		b.waitText(".fg-table", fn)
	}
	// 500 + 400 samples of 10 ms: HandleOrder's total is 9 s, all of it.
	b.waitText(".fg-table tbody tr:first-child", "shop/checkout.computeTax") // the largest self first
	if title := b.attr(`.fg-frame[data-name="shop/checkout.HandleOrder"]`, "title"); !strings.Contains(title, "total 9s (100%)") {
		t.Errorf("HandleOrder's frame says %q; want its total, 9s (100%%)", title)
	}
	if sel := b.text(`select[aria-label="Profile type"]`); !strings.Contains(sel, "cpu:cpu:nanoseconds:cpu:nanoseconds") {
		t.Errorf("profile types offered: %q", sel)
	}
	b.screenshot("profiles-flamegraph")
	b.click("#theme")
	b.screenshot("profiles-flamegraph-dark")
	b.click("#theme")
	// By keyboard: Enter on a focused frame zooms into it.
	b.run(chromedp.Focus(`.fg-frame[data-name="shop/checkout.computeTax"]`, chromedp.ByQuery), chromedp.KeyEvent("\r"))
	b.waitText(".fg-crumbs strong", "shop/checkout.computeTax")
	b.click(".fg-crumbs a") // back to the root
	b.waitText(".fg-crumbs strong", "total")

	// Zoom: clicking renderInvoice makes it the whole width; its sibling
	// computeTax leaves the graph.
	b.click(`.fg-frame[data-name="shop/checkout.renderInvoice"]`)
	b.waitText(".fg-crumbs strong", "shop/checkout.renderInvoice")
	var zoomed struct {
		Width string
		Tax   int
	}
	b.eval(`({width: document.querySelector('.fg-frame[data-name="shop/checkout.renderInvoice"]').style.width,
		tax: document.querySelectorAll('.fg-frame[data-name="shop/checkout.computeTax"]').length})`, &zoomed)
	if zoomed.Width != "100%" || zoomed.Tax != 0 {
		t.Errorf("after the click on renderInvoice: its width %q, %d computeTax frames; want 100%% and none", zoomed.Width, zoomed.Tax)
	}
	b.screenshot("profiles-zoomed")
	// Sorting by name, ascending.
	b.click(`.fg-sort[data-key="name"]`)
	b.waitText(".fg-table tbody tr:first-child", "main.main")
	// Search highlights.
	b.run(chromedp.SendKeys(`input[aria-label="Search functions"]`, "Invoice", chromedp.ByQuery))
	b.run(chromedp.WaitVisible(`.fg-frame.fg-match`, chromedp.ByQuery))

	// pprof's web UI for the same selection.
	href := b.attr(".pprof-link", "href")
	var around string
	b.eval(`document.querySelector('.pprof-link').parentElement.textContent`, &around)
	if around != "Open in pprof's web UI" {
		t.Errorf("the pprof link reads %q", around)
	}
	u, err := url.Parse(href)
	if err != nil || u.Path != "/vigil/ui/pprof/" || u.Query().Get("query") != `cpu{service="uishop"}` || u.Query().Get("start") == "" {
		t.Errorf("pprof link %q; want /vigil/ui/pprof/?query=cpu{service=\"uishop\"}&start=…&end=…", href)
	}
	resp, err := http.Get(base + strings.TrimPrefix(href, "/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "computeTax") {
		t.Errorf("GET %s: %s; want pprof's UI of the profiles", href, resp.Status)
	}

	// The diff: baseline A around the first profile, B around the second.
	ms := func(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }
	diff := base + "#/profiles?" + url.Values{"query": {`cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="uishop"}`},
		"from": {ms(tB.Add(-time.Minute))}, "to": {ms(now.Add(time.Minute))},
		"diff_from": {ms(tA.Add(-time.Minute))}, "diff_to": {ms(tA.Add(time.Minute))}}.Encode()
	b.open(diff)
	b.waitText(".fg-table", "Change")
	// computeTax went from 25% of A to 80% of B: +220%, first by change.
	b.waitText(".fg-table tbody tr:first-child", "shop/checkout.computeTax")
	b.waitText(".fg-table tbody tr:first-child td.fg-grew", "+220%")
	b.waitText(".fg-table td.fg-shrank", "-73.3%")
	var bg string
	b.eval(`document.querySelector('.fg-frame[data-name="shop/checkout.computeTax"]').style.background`, &bg)
	if !strings.HasPrefix(bg, "rgb(") || !isReddish(bg) {
		t.Errorf("computeTax's frame in the diff is %q; want red (it grew)", bg)
	}
	b.screenshot("profiles-diff")

	// A bad selector shows the querier's message.
	bad := `cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=~"("}`
	msg := connectError(t, p, "SelectMergeStacktraces", fmt.Sprintf(`{"profileTypeID":"cpu:cpu:nanoseconds:cpu:nanoseconds","labelSelector":%q}`, `{service_name=~"("}`))
	b.open(base + "#/profiles?" + url.Values{"query": {bad}}.Encode())
	b.waitText(".error", msg)
	b.screenshot("profiles-bad-selector")
	b.noConsoleErrors(regexp.MustCompile(`status of 400`))
}

// isReddish tells whether a CSS rgb() colour has more red than green.
func isReddish(rgb string) bool {
	var r, g, bl int
	if _, err := fmt.Sscanf(rgb, "rgb(%d, %d, %d)", &r, &g, &bl); err != nil {
		return false
	}
	return r > g+40 && r > bl+40
}
