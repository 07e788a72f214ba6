//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Keys of TestUIAuth's tenant.
const (
	uiAuthReader = "ui-reader-5e1d"
	uiAuthWriter = "ui-writer-a07c"
)

// TestUIAuth: with --auth.config the UI asks for a key, shows the API's
// 401 and 403 messages, keeps the key for the tab (a reload stays signed
// in), sends it on every call and on the live tail's websocket, and signs
// out; no answer the browser gets asks for basic auth (which would pop up
// the browser's own dialog over the form).
func TestUIAuth(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`tenants:
  team-ui:
    keys:
      - sha256: %q
        scopes: [read]
      - sha256: %q
        scopes: [write]
`, sha(uiAuthReader), sha(uiAuthWriter))), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", conf)
	write := []string{"Authorization", "Bearer " + uiAuthWriter}

	now := time.Now()
	seed := fmt.Sprintf(`{"streams":[{"stream":{"service_name":"authsvc","level":"info"},"values":[
  ["%d","signed-in line one"],["%d","signed-in line two"]]}]}`, now.Add(-2*time.Minute).UnixNano(), now.Add(-time.Minute).UnixNano())
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(seed), write...); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	q := "http://" + p.query + "/loki/api/v1/query_range?" + url.Values{"query": {`{service_name="authsvc"}`}, "since": {"15m"}}.Encode()
	eventually(t, 30*time.Second, "the seeded lines are readable with the read key", func() (bool, string) {
		code, _, body := authRequest(t, "GET", q, nil, "Authorization", "Bearer "+uiAuthReader)
		return code == 200 && strings.Contains(body, "signed-in line two"), fmt.Sprintf("%d %.200s", code, body)
	})

	b := newBrowser(t)
	// Every 401 the browser receives: none may carry a basic challenge.
	var mu sync.Mutex
	var unauthorized []string
	var challenged []string
	chromedp.ListenTarget(b.ctx, func(ev any) {
		e, ok := ev.(*network.EventResponseReceived)
		if !ok || e.Response.Status != 401 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		unauthorized = append(unauthorized, e.Response.URL)
		for k, v := range e.Response.Headers {
			if strings.EqualFold(k, "WWW-Authenticate") {
				challenged = append(challenged, fmt.Sprintf("%s: %v", e.Response.URL, v))
			}
		}
	})
	b.run(network.Enable())

	base := "http://" + p.query + "/"
	logs := base + "#/logs?" + url.Values{"query": {`{service_name="authsvc"}`}, "from": {"now-15m"}, "to": {"now"}}.Encode()

	// No key: the form, with the API's message.
	b.open(logs)
	b.waitText("#signin h1", "Sign in")
	b.waitText("#signin-message .error", "missing credentials")
	var typ string
	b.eval(`document.getElementById('signin-key').type`, &typ)
	if typ != "password" {
		t.Errorf("key input type %q; want password", typ)
	}
	b.screenshot("auth-signin")

	signIn := func(key string) {
		t.Helper()
		b.run(chromedp.Evaluate(`document.getElementById('signin-key').value = ''`, nil),
			chromedp.SendKeys("#signin-key", key+"\r", chromedp.ByQuery))
	}
	// A wrong key: the API's 401 message.
	signIn("not-a-key")
	b.waitText("#signin-message .error", "the key is not one of --auth.config")
	b.screenshot("auth-wrong-key")
	// A key without read: the API's 403 message.
	signIn(uiAuthWriter)
	b.waitText("#signin-message .error", `tenant "team-ui"'s key may write, not read`)
	b.screenshot("auth-no-read-scope")

	// The read key: the page renders with it, and the tenant shows.
	signIn(uiAuthReader)
	b.waitText("#session-tenant", "team-ui")
	b.waitText("#logs-results", "signed-in line two")
	b.waitText("#logs-results", "signed-in line one")
	var stored struct{ Session, Local any }
	b.eval(`({Session: sessionStorage.getItem('vigil-key'), Local: localStorage.getItem('vigil-key')})`, &stored)
	if stored.Session != uiAuthReader || stored.Local != nil {
		t.Errorf("key kept as %+v; want in sessionStorage only", stored)
	}
	b.screenshot("auth-signed-in-logs")

	// The live tail carries the key on its websocket.
	b.click("#logs-live")
	b.waitText("#logs-tail-state", "Following")
	nonce := fmt.Sprintf("tailed with a key %d", time.Now().UnixNano())
	live := fmt.Sprintf(`{"streams":[{"stream":{"service_name":"authsvc","level":"info"},"values":[["%d","%s"]]}]}`, time.Now().UnixNano(), nonce)
	if code, body := p.post("/loki/api/v1/push", "application/json", []byte(live), write...); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	b.waitText("#logs-tail", nonce)
	var wsURL string
	b.eval(`performance.getEntriesByType('resource').map(e => e.name).filter(n => n.startsWith('ws')).join(' ')`, &wsURL)
	if strings.Contains(wsURL, uiAuthReader) {
		t.Errorf("the key is in the websocket's URL: %s", wsURL)
	}
	b.screenshot("auth-live-tail")

	// A reload keeps the sign-in (sessionStorage).
	b.run(chromedp.Reload(), chromedp.WaitReady("#view", chromedp.ByQuery))
	b.waitText("#session-tenant", "team-ui")
	b.waitText("#logs-results", "signed-in line two")
	var forms int
	b.eval(`document.querySelectorAll('#signin').length`, &forms)
	if forms != 0 {
		t.Errorf("after a reload: the sign-in form shows")
	}

	// Sign out: the form again, the key forgotten.
	b.click("#sign-out")
	b.waitText("#signin h1", "Sign in")
	var left any
	b.eval(`sessionStorage.getItem('vigil-key')`, &left)
	var hidden, session bool
	b.eval(`document.getElementById('view').hidden`, &hidden)
	b.eval(`!!document.getElementById('session')`, &session)
	if left != nil || !hidden || session {
		t.Errorf("after signing out: key %v, page hidden %v, header control %v; want none, true, false", left, hidden, session)
	}
	b.screenshot("auth-signed-out")

	mu.Lock()
	if len(unauthorized) == 0 {
		t.Error("the browser saw no 401: the test checked no challenge")
	}
	if len(challenged) > 0 {
		t.Errorf("answers to the UI asked for basic auth (the browser's dialog): %q", challenged)
	}
	t.Logf("%d answers 401 to the UI, none with WWW-Authenticate", len(unauthorized))
	mu.Unlock()
	b.noConsoleErrors(regexp.MustCompile(`status of 40[13] \((Unauthorized|Forbidden)\)`))
}
