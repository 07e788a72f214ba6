//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The web UI's tests drive Debian's chromium, headless, through the
// DevTools protocol (chromedp), on an all-in-one seeded by each test.

// chromiumPath is $VIGIL_CHROMIUM or the chromium on PATH. Without one the
// test skips, unless VIGIL_REQUIRE_SERVICES=1 (make test), where it fails:
// deploy/local/deps.sh installs it.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("VIGIL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
		t.Fatal("no chromium on PATH (deploy/local/deps.sh installs Debian's chromium)")
	}
	t.Skip("no chromium on PATH; set VIGIL_CHROMIUM")
	return ""
}

// browser is one headless chromium tab, collecting what the page logs as
// errors so that a test can require none.
type browser struct {
	t   testing.TB
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// newBrowser starts chromium with the flags that work on this machine (no
// sandbox, no GPU, no network but the page's own) and stops it at the end
// of the test.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1366, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil && e.ExceptionDetails.Exception.Description != "" {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			b.addError("exception: " + msg)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range e.Args {
					if a.Description != "" {
						parts = append(parts, a.Description)
					} else {
						parts = append(parts, strings.Trim(string(a.Value), `"`))
					}
				}
				b.addError("console." + string(e.Type) + ": " + strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError {
				b.addError("log: " + e.Entry.Text + " " + e.Entry.URL)
			}
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("cannot start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return b
}

func (b *browser) addError(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// consoleErrors returns the errors logged so far and forgets them.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errors
	b.errors = nil
	return e
}

// noConsoleErrors fails the test if the page logged an error, except the
// ones matching allow (e.g. the API's 400 for a query the test makes bad on
// purpose, which the browser logs as a failed resource).
func (b *browser) noConsoleErrors(allow ...*regexp.Regexp) {
	b.t.Helper()
next:
	for _, e := range b.consoleErrors() {
		for _, re := range allow {
			if re.MatchString(e) {
				continue next
			}
		}
		b.t.Errorf("the page logged an error: %s", e)
	}
}

// run runs chromedp actions with a bound of 30 s.
func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.screenshot("failed-" + sanitize(b.t.Name()))
		b.t.Fatalf("browser: %v\nerrors logged by the page: %q", err, b.consoleErrors())
	}
}

// open loads url and waits for the page's shell.
func (b *browser) open(url string) {
	b.t.Helper()
	b.run(chromedp.Navigate(url), chromedp.WaitReady("#view", chromedp.ByQuery))
}

// waitText waits until the first element matching sel contains text.
func (b *browser) waitText(sel, text string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { for (const el of document.querySelectorAll(%q)) if (el.textContent.includes(%q)) return true; return false })()`, sel, text)
	b.run(chromedp.Poll(js, nil, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second)))
}

// text returns the text content of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// click clicks the first element matching sel.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run(chromedp.Click(sel, chromedp.ByQuery, chromedp.NodeVisible))
}

// clickText clicks the first element matching sel whose text contains text.
func (b *browser) clickText(sel, text string) {
	b.t.Helper()
	b.waitText(sel, text)
	var nodes []*cdp.Node
	js := fmt.Sprintf(`(() => { for (const el of document.querySelectorAll(%q)) if (el.textContent.includes(%q)) { el.setAttribute('data-e2e-click', '1'); return true } return false })()`, sel, text)
	var ok bool
	b.run(chromedp.Evaluate(js, &ok))
	b.run(chromedp.Nodes(`[data-e2e-click="1"]`, &nodes, chromedp.ByQuery))
	b.run(chromedp.Evaluate(`document.querySelector('[data-e2e-click="1"]').removeAttribute('data-e2e-click')`, nil),
		chromedp.MouseClickNode(nodes[0]))
}

// location returns the page's URL (the deep link the page keeps current).
func (b *browser) location() string {
	b.t.Helper()
	var u string
	b.run(chromedp.Location(&u))
	return u
}

// screenshot saves a full-page PNG under the artifacts directory
// ($VIGIL_ARTIFACTS_DIR, by default .artifacts/ui at the top of the tree).
func (b *browser) screenshot(name string) {
	var png []byte
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := os.Getenv("VIGIL_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", ".artifacts", "ui")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, sanitize(name)+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", p)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func sanitize(s string) string { return unsafeName.ReplaceAllString(s, "_") }

// eval runs a JavaScript expression in the page and returns its value.
func (b *browser) eval(js string, out any) {
	b.t.Helper()
	b.run(chromedp.Evaluate(js, out))
}

// waitJS waits until the JavaScript expression is true.
func (b *browser) waitJS(js string) {
	b.t.Helper()
	b.run(chromedp.Poll(js, nil, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second)))
}
