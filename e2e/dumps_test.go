//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/model"
)

// webhookSink is the chat webhook of a test: it keeps every notification.
type webhookSink struct {
	mu   sync.Mutex
	msgs []webhookMsg
}

type webhookMsg struct {
	Text   string `json:"text"`
	Kind   string `json:"kind"`
	Tenant string `json:"tenant"`
	Issue  struct {
		ID      string `json:"id"`
		Service string `json:"service"`
		Count   int64  `json:"count"`
	} `json:"issue"`
}

func newWebhookSink(t *testing.T) (*webhookSink, string) {
	w := &webhookSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m webhookMsg
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil || m.Text == "" {
			t.Errorf("webhook body %s: %v; want Slack-compatible JSON with a text", b, err)
		}
		w.mu.Lock()
		w.msgs = append(w.msgs, m)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL
}

// kinds returns "kind service" of each notification received, in order.
func (w *webhookSink) kinds() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		out = append(out, m.Kind+" "+m.Issue.Service)
	}
	return out
}

// issueIDs returns the distinct issues notified.
func (w *webhookSink) issueIDs() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := map[string]bool{}
	for _, m := range w.msgs {
		ids[m.Issue.ID] = true
	}
	return ids
}

// issues returns the dump issues of a service through Vigil's JSON API.
func (p *proc) issues(service string) []model.Issue {
	p.t.Helper()
	code, body, _ := p.get("/vigil/api/v1/dumps/issues?service=" + url.QueryEscape(service))
	if code != 200 {
		p.t.Fatalf("issues of %s: %d %s", service, code, body)
	}
	var r struct{ Issues []model.Issue }
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		p.t.Fatalf("issues of %s: %v: %s", service, err, body)
	}
	return r.Issues
}

// waitIssue waits until service has exactly one issue with count events
// and returns it.
func (p *proc) waitIssue(service string, count int64) model.Issue {
	p.t.Helper()
	var is model.Issue
	eventually(p.t, 30*time.Second, fmt.Sprintf("one issue of %s with %d events", service, count), func() (bool, string) {
		iss := p.issues(service)
		if len(iss) == 1 {
			is = iss[0]
		}
		return len(iss) == 1 && iss[0].Count == count, fmt.Sprintf("%+v", iss)
	})
	return is
}

// sentryAPI calls the query port, with a Bearer token unless it is "".
func (p *proc) sentryAPI(method, path, token, body string) (int, []byte) {
	p.t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.query+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type paymentError struct{ card string }

func (e *paymentError) Error() string { return "card " + e.card + " declined" }

// chargeCard fails the same way every time, from the same place.
func chargeCard() error { return &paymentError{card: "visa"} }

// sendGoEvents reports chargeCard's error n times with sentry-go, as a Go
// service does, and waits until the SDK delivered them.
func sendGoEvents(t *testing.T, dsn string, n int) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client, err := sentrygo.NewClient(sentrygo.ClientOptions{Dsn: dsn, Release: "shop@2.0.0", Environment: "prod",
		ServerName: "go-host", AttachStacktrace: true, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hub := sentrygo.NewHub(client, sentrygo.NewScope())
	hub.Scope().SetTag("service", "go-shop")
	hub.Scope().SetTag("grade", "1")
	for i := 0; i < n; i++ {
		if id := hub.CaptureException(chargeCard()); id == nil {
			t.Fatal("sentry-go dropped an event")
		}
	}
	if !client.Flush(20 * time.Second) {
		t.Fatal("sentry-go did not deliver its events within 20s")
	}
}

const pythonShop = `
import os, sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"], release="shop@1.2.3", environment="staging", server_name="py-host")
sentry_sdk.set_tag("service", "py-shop")

def load(cart):
    return cart["missing"]

for i in range(int(os.environ["N"])):
    try:
        load({})
    except Exception:
        sentry_sdk.capture_exception()
sentry_sdk.flush(timeout=20)
`

// sendPythonEvents raises the same KeyError n times in a Python program
// reporting with sentry-sdk from PyPI.
func sendPythonEvents(t *testing.T, pypath, dsn string, n int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.py"), []byte(pythonShop), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "shop.py")
	cmd.Dir = dir // the SDK marks frames under the working directory in-app
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pypath, "DSN="+dsn, "N="+itoa(n))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
}

// TestDumpsAllInOne sends errors from real Sentry SDKs — sentry-go and
// Python's sentry-sdk — to vigil all-in-one with the DSN key it created:
// the same exception sent three times is one issue counted three times,
// read through Vigil's API and the Sentry web API (Bearer token); an issue
// resolved through either API and seen again is a regression, posted to
// the webhook like the new issues were; everything survives a restart.
func TestDumpsAllInOne(t *testing.T) {
	pypath, err := childproc.PythonPath("sentry_sdk")
	if err != nil && os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
		t.Fatal(err)
	} else if err != nil {
		t.Skip(err)
	}
	hook, hookURL := newWebhookSink(t)
	data := t.TempDir()
	p := startAllInOne(t, data, "--dumps.tokens", "grafana-token", "--dumps.webhook-url", hookURL)
	key, err := os.ReadFile(filepath.Join(data, "dumps", "dsn-key"))
	if err != nil {
		t.Fatalf("all-in-one kept no DSN key: %v", err)
	}
	dsn := "http://" + strings.TrimSpace(string(key)) + "@" + p.dumps + "/7"

	sendGoEvents(t, dsn, 3)
	sendPythonEvents(t, pypath, dsn, 3)
	goIssue, pyIssue := p.waitIssue("go-shop", 3), p.waitIssue("py-shop", 3)
	if goIssue.Title != "*e2e.paymentError: card visa declined" || goIssue.Project != "7" || goIssue.Grade != 1 ||
		strings.Join(goIssue.Releases, ",") != "shop@2.0.0" || strings.Join(goIssue.Hosts, ",") != "go-host" {
		t.Errorf("sentry-go issue %+v", goIssue)
	}
	if pyIssue.Title != "KeyError: 'missing'" || pyIssue.Culprit == "" || strings.Join(pyIssue.Environments, ",") != "staging" {
		t.Errorf("sentry-sdk issue %+v", pyIssue)
	}
	code, body, _ := p.get("/vigil/api/v1/dumps/issues/" + pyIssue.ID)
	var detail struct {
		Issue  model.Issue
		Events []model.Dump
	}
	if err := json.Unmarshal([]byte(body), &detail); code != 200 || err != nil || len(detail.Events) != 3 {
		t.Errorf("issue %s: %d %v: want it with its 3 events; got %s", pyIssue.ID, code, err, body)
	}
	code, body, _ = p.get("/vigil/api/v1/dumps/events/" + pyIssue.LastEventID)
	var ev model.Dump
	if err := json.Unmarshal([]byte(body), &ev); code != 200 || err != nil || ev.IssueID != pyIssue.ID || len(ev.Exceptions) == 0 ||
		ev.Platform != "python" {
		t.Errorf("event %s: %d %v %s", pyIssue.LastEventID, code, err, body)
	}

	// The Sentry web API, as Grafana's Sentry data source calls it.
	if code, b := p.sentryAPI("GET", "/api/0/organizations/vigil/issues/", "", ""); code != 401 {
		t.Errorf("Sentry API without a token: %d %s; want 401", code, b)
	}
	code, b := p.sentryAPI("GET", "/api/0/organizations/vigil/issues/?query=is:unresolved&sort=freq", "grafana-token", "")
	var sissues []struct {
		ID, Title, Count, Status string
		Project                  struct{ ID, Slug string }
	}
	if err := json.Unmarshal(b, &sissues); code != 200 || err != nil {
		t.Fatalf("Sentry issues: %d %v %s", code, err, b)
	}
	got := map[string]string{}
	for _, s := range sissues {
		got[s.ID] = s.Project.Slug + " " + s.Count + " " + s.Status
	}
	if got[goIssue.ID] != "go-shop 3 unresolved" || got[pyIssue.ID] != "py-shop 3 unresolved" || len(got) != 2 {
		t.Errorf("Sentry issues %v; want go-shop and py-shop, 3 events each, unresolved", got)
	}
	eventually(t, 20*time.Second, "webhook told of both new issues", func() (bool, string) {
		k := hook.kinds()
		return len(k) == 2 && strings.Contains(strings.Join(k, ","), "new go-shop") && strings.Contains(strings.Join(k, ","), "new py-shop"),
			fmt.Sprint(k)
	})

	// Resolved through Vigil's API and through Sentry's, both recur.
	if code, b := p.sentryAPI("PUT", "/vigil/api/v1/dumps/issues/"+goIssue.ID+"/status", "", `{"status":"resolved"}`); code != 200 ||
		!bytes.Contains(b, []byte(`"status":"resolved"`)) {
		t.Fatalf("resolve %s: %d %s", goIssue.ID, code, b)
	}
	if code, b := p.sentryAPI("PUT", "/api/0/organizations/vigil/issues/"+pyIssue.ID+"/", "grafana-token", `{"status":"resolved"}`); code != 200 {
		t.Fatalf("resolve %s through the Sentry API: %d %s", pyIssue.ID, code, b)
	}
	sendGoEvents(t, dsn, 1)
	sendPythonEvents(t, pypath, dsn, 1)
	for _, service := range []string{"go-shop", "py-shop"} {
		is := p.waitIssue(service, 4)
		if is.Status != model.IssueUnresolved || is.RegressedAt <= is.ResolvedAt || is.ResolvedAt == 0 {
			t.Errorf("issue of %s after it recurred: %+v; want unresolved, regressed after it was resolved", service, is)
		}
	}
	eventually(t, 20*time.Second, "webhook told of both regressions", func() (bool, string) {
		k := strings.Join(hook.kinds(), ",")
		return len(hook.kinds()) == 4 && strings.Contains(k, "regression go-shop") && strings.Contains(k, "regression py-shop"), k
	})
	if n := metric(t, p.query, "vigil_ingester_indexed_dumps_total"); n != 8 {
		t.Errorf("vigil_ingester_indexed_dumps_total = %v; want 8", n)
	}

	// A restart keeps the key, the issues and their counts.
	p.stop()
	p.restart()
	if again, _ := os.ReadFile(filepath.Join(data, "dumps", "dsn-key")); !bytes.Equal(again, key) {
		t.Errorf("DSN key changed across a restart: %q, then %q", key, again)
	}
	for _, service := range []string{"go-shop", "py-shop"} {
		if iss := p.issues(service); len(iss) != 1 || iss[0].Count != 4 {
			t.Errorf("issues of %s after a restart: %+v; want one with 4 events", service, iss)
		}
	}
	sendGoEvents(t, dsn, 1)
	p.waitIssue("go-shop", 5)
}
