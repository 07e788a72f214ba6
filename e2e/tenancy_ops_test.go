//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkReconcileTenants runs vigil reconcile on the collector's ledger in
// dataDir against the query API at queryAddr. With trusted (the host is a
// trusted proxy) it checks every tenant of the ledger by X-Scope-OrgID;
// with A's key it checks A alone, and asking for B's counts with A's key
// is refused while A's are still compared.
func checkReconcileTenants(t *testing.T, dataDir, queryAddr string, trusted bool, a, b *tenant) {
	t.Helper()
	reconcile := func(args ...string) (string, error) {
		out, err := exec.Command(vigilBinary(t), append([]string{"reconcile", "--data-dir", dataDir,
			"--reconcile.query-url", "http://" + queryAddr, "--since", "1h", "--until", "0"}, args...)...).CombinedOutput()
		return string(out), err
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(a.key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aLine := fmt.Sprintf("produced %d, stored %d of them, 0 missing", a.lines, a.lines)
	if trusted {
		out, err := reconcile()
		for _, want := range []string{"tenant team-a: " + aLine, fmt.Sprintf("tenant team-b: produced %d, stored %d of them, 0 missing", b.lines, b.lines),
			fmt.Sprintf("produced %d, stored %d of them, 0 missing in 0 minute(s)", a.lines+b.lines, a.lines+b.lines)} {
			if err != nil || !strings.Contains(out, want) {
				t.Errorf("vigil reconcile as a trusted proxy: %v; want %q in\n%s", err, want, out)
			}
		}
	}
	if out, err := reconcile("--reconcile.tenant-key-file", keyFile, "--reconcile.tenants", "team-a"); err != nil || !strings.Contains(out, aLine) {
		t.Errorf("vigil reconcile with team-a's key: %v; want %q in\n%s", err, aLine, out)
	}
	out, err := reconcile("--reconcile.tenant-key-file", keyFile, "--reconcile.tenants", "team-a,team-b")
	if err == nil || !strings.Contains(out, `tenant "team-b": the store count query answered 403`) || !strings.Contains(out, aLine) {
		t.Errorf("vigil reconcile of team-b with team-a's key: %v; want team-b refused (403) and team-a's %q in\n%s", err, aLine, out)
	}
}

// tenantWebhooks are the dumps webhooks of the tenancy tests: the
// operator's (--dumps.webhook-url) and the one of a tenant's own
// dumps_webhook_url.
type tenantWebhooks struct {
	operator, own *webhookSink
	operatorURL   string
}

func newTenantWebhooks(t *testing.T, owner *tenant) *tenantWebhooks {
	h := &tenantWebhooks{}
	h.operator, h.operatorURL = newWebhookSink(t)
	h.own, owner.dumpsWebhook = newWebhookSink(t)
	return h
}

// check waits for the new issues of a (which has its own webhook) and b
// (which has not): a's goes to its own webhook only, b's to the
// operator's, each named by its tenant.
func (h *tenantWebhooks) check(t *testing.T, a, b *tenant) {
	t.Helper()
	tenants := func(w *webhookSink) []string {
		w.mu.Lock()
		defer w.mu.Unlock()
		var out []string
		for _, m := range w.msgs {
			out = append(out, m.Tenant+" "+m.Kind)
		}
		return out
	}
	eventually(t, 30*time.Second, "each tenant's new issue at its webhook", func() (bool, string) {
		own, op := tenants(h.own), tenants(h.operator)
		return slices.Equal(own, []string{a.name + " new"}) && slices.Equal(op, []string{b.name + " new"}),
			fmt.Sprintf("%s's webhook %q, the operator's %q", a.name, own, op)
	})
}
