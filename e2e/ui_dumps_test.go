//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// TestUIDumps runs the service on the Go SDK whose handler panics on three
// requests, each on its own trace, and checks the Dumps pages: the link
// the Home page builds (dumpsLink({service})) lists the issue with its
// three events, a click opens it, the stack highlights the in-app frame,
// every goroutine of the dump is there with the crashed one marked, the
// event links to its trace, Resolve changes the status the API reads back,
// and an unknown issue shows the API's error.
func TestUIDumps(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	svc := newSDKService(t, p, dsnOf(t, p), t.TempDir())
	svc.start()
	traces := []string{"6bf92f3577b34da6a3ce929d0e0e4736", "6bf92f3577b34da6a3ce929d0e0e4737", "6bf92f3577b34da6a3ce929d0e0e4738"}
	for i, tr := range traces {
		if code := svc.do("GET", fmt.Sprintf("/orders/o-%d", i), tr); code != 500 {
			t.Fatalf("GET /orders/o-%d: %d; want 500 from the recovered panic", i, code)
		}
	}
	if code := svc.do("POST", "/jobs/reconcile", "6bf92f3577b34da6a3ce929d0e0e4739"); code != 202 {
		t.Fatalf("POST /jobs/reconcile: %d; want 202", code)
	}
	is := p.issueBy("sdk-shop", "chargeOrder", 3)
	p.issueBy("sdk-shop", "reconcileLedger", 1)

	b := newBrowser(t)
	base := "http://" + p.query + "/"
	_, detail := b.readyAfter(base+"#/dumps?service=sdk-shop", "vigil-dumps-ready", "/vigil/api/v1/dumps/")
	t.Logf("Dumps issue list interactive: %s", detail)
	row := fmt.Sprintf(`tr[data-issue=%q]`, is.ID)
	b.waitText(row, is.Title)
	b.waitText(row+" .dumps-count", "3")
	b.waitText(".dumps-issues", "assignment to entry in nil map")
	b.screenshot("dumps-list")
	// Filters are deep links: grade 1 has no issue of this grade-2 service,
	// environment e2e has both.
	b.open(base + "#/dumps?service=sdk-shop&grade=1")
	b.waitText(".empty", "No issues match")
	b.open(base + "#/dumps?service=sdk-shop&env=e2e&grade=2&status=unresolved&from=now-1h&to=now")
	b.waitText(row+" .dumps-count", "3")
	b.waitText(".dumps-issues", "assignment to entry in nil map")

	// The issue's page, by a click.
	b.clickText(row+" a.dumps-title", is.Title)
	b.waitText(".dumps-goroutines", "Goroutines")
	if loc := b.location(); !strings.HasSuffix(loc, "#/dumps/"+is.ID) {
		t.Errorf("issue page at %q; want #/dumps/%s", loc, is.ID)
	}
	b.waitText(".dumps-counts .dumps-count", "3")
	b.waitText(".dumps-exception .dumps-frame.in-app", "chargeOrder")
	b.waitText(".dumps-goroutines", "parkedWorker")
	b.waitText(".dumps-goroutine.crashed summary", "chargeOrder")
	var trace string
	b.eval(`document.querySelector('a.dumps-trace').getAttribute('href')`, &trace)
	id := strings.TrimPrefix(trace, "#/trace/")
	if i := strings.IndexByte(id, '?'); i >= 0 {
		id = id[:i]
	}
	if !strings.HasPrefix(trace, "#/trace/") || !slices.Contains(traces, id) {
		t.Errorf("the event's trace link is %q; want #/trace/<one of %q>", trace, traces)
	}
	b.waitText(".dumps-events", "6bf92f3577b34da6")
	var folded int
	b.eval(`document.querySelectorAll('.dumps-exception .dumps-folded').length`, &folded)
	if folded == 0 {
		t.Errorf("the exception's stack folds none of its frames outside the app")
	}
	b.screenshot("dumps-issue")
	b.click("#theme")
	b.screenshot("dumps-issue-dark")
	b.click("#theme")
	_, detail = b.readyAfter(base+"#/dumps/"+is.ID, "vigil-dumps-ready", "/vigil/api/v1/dumps/")
	t.Logf("Dumps issue page interactive (issue, event and goroutines drawn): %s", detail)

	// Resolve, read back through the API.
	b.click(`button[data-status="resolved"]`)
	b.waitText(".badge", "resolved")
	b.waitText(`button[data-status="unresolved"]`, "Reopen")
	code, body, _ := p.get("/vigil/api/v1/dumps/issues/" + is.ID)
	var got struct{ Issue model.Issue }
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || got.Issue.Status != model.IssueResolved || got.Issue.ResolvedAt == 0 {
		t.Errorf("issue after Resolve: %d %v %+v; want resolved", code, err, got.Issue)
	}
	b.screenshot("dumps-resolved")
	// Reopen, then Ignore.
	b.click(`button[data-status="unresolved"]`)
	b.waitText(`button[data-status="ignored"]`, "Ignore")
	b.click(`button[data-status="ignored"]`)
	b.waitText(".badge", "ignored")
	_, body, _ = p.get("/vigil/api/v1/dumps/issues/" + is.ID)
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Issue.Status != model.IssueIgnored {
		t.Errorf("issue after Reopen and Ignore: %v %+v; want ignored", err, got.Issue)
	}

	// The ignored issue is listed under its status.
	b.open(base + "#/dumps?service=sdk-shop&status=ignored")
	b.waitText(row+" .badge", "ignored")

	// An unknown issue shows the API's message.
	code, body, _ = p.get("/vigil/api/v1/dumps/issues/4242")
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); code != 404 || err != nil || e.Error == "" {
		t.Fatalf("unknown issue: %d %s; want 404 with an error", code, body)
	}
	b.open(base + "#/dumps/4242")
	b.waitText(".error", e.Error)
	b.screenshot("dumps-unknown-issue")
	b.noConsoleErrors(regexp.MustCompile(`status of 404`))
}
