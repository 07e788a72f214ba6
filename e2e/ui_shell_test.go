//go:build e2e

package e2e

import (
	"testing"
)

// The query port serves the UI at its root (it answered 404 before), and
// the shell's navigation reaches every signal's page.
func TestUIShell(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	b := newBrowser(t)
	b.open("http://" + p.query + "/")
	b.waitText("#nav", "Logs")
	for _, page := range []string{"Logs", "Traces", "Metrics", "Profiles", "Dumps"} {
		b.waitText("#nav a", page)
	}
	b.open("http://" + p.query + "/#/no-such-page")
	b.waitText("#view", `There is no page "no-such-page"`)
	b.screenshot("shell-not-found")
	b.noConsoleErrors()
}
