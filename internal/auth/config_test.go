package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func hash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

func TestParseConfigFull(t *testing.T) {
	b, err := os.ReadFile("testdata/configs/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig("full.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Tenants); got != 2 {
		t.Fatalf("got %d tenants; want 2", got)
	}
	want := Limits{IngestionRate: 50000, IngestionBurst: 100000, MaxStreams: 10000, MaxSeries: 200000,
		MaxQueryRange: 30 * 24 * time.Hour, Retention: 14 * 24 * time.Hour}
	if got := c.Tenants["team-a"].Limits; got != want {
		t.Errorf("got limits %+v; want %+v", got, want)
	}
	if got := c.Tenants["team-a"].DumpsWebhookURL; got != "https://hooks.example.com/services/team-a" {
		t.Errorf("got team-a's dumps webhook %q", got)
	}
	if got := c.Tenants["team-b"].DumpsWebhookURL; got != "" {
		t.Errorf("got team-b's dumps webhook %q; want none", got)
	}
	if got := c.Tenants["team-b"].Limits; got != (Limits{}) {
		t.Errorf("got team-b limits %+v; want none", got)
	}
	if len(c.keys) != 3 || len(c.dsn) != 2 {
		t.Fatalf("got %d keys and %d DSN keys; want 3 and 2", len(c.keys), len(c.dsn))
	}
	if k := c.keys[0]; k.scopes != ScopeWrite|ScopeRead || k.environment != "production" || k.tenant.ID != "team-a" {
		t.Errorf("got first key %s %q %s; want write,read production team-a", k.scopes, k.environment, k.tenant.ID)
	}
	wantProxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != wantProxies[0] || c.TrustedProxies[1] != wantProxies[1] {
		t.Errorf("got trusted proxies %v; want %v", c.TrustedProxies, wantProxies)
	}
}

func TestParseConfigMinimal(t *testing.T) {
	// The shape of the issue.
	b, err := os.ReadFile("testdata/configs/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig("minimal.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tenants["team-a"].Limits; got.IngestionRate != 50000 || got.IngestionBurst != 100000 {
		t.Errorf("got limits %+v; want rate 50000 burst 100000", got)
	}
	if c.ProxyScopes != ScopeWrite|ScopeRead || len(c.TrustedProxies) != 0 {
		t.Errorf("got proxies %v scopes %s; want none, write,read", c.TrustedProxies, c.ProxyScopes)
	}
}

func TestParseConfigErrors(t *testing.T) {
	h := hash("k")
	f := func(yaml, want string) {
		t.Helper()
		_, err := ParseConfig("auth.yaml", []byte(yaml))
		if err == nil {
			t.Fatalf("%s: got no error; want %q", yaml, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q; want it to contain %q", err, want)
		}
	}
	f("", "auth.yaml: empty")
	f("tenants: [", "auth.yaml: yaml: line 1")
	f("tenant: {}", `auth.yaml:1: tenant: unknown field; known: tenants, trusted_proxies`)
	f("trusted_proxies: {cidrs: [10.0.0.0/8]}", `auth.yaml:1: tenants: missing`)
	f("tenants: {}", `auth.yaml:1: tenants: empty`)
	f("tenants:\n  a/b: {}", `auth.yaml:2: tenants.a/b: tenant id "a/b"`)
	f("tenants:\n  a:\n    keys:\n      - sha256: abc\n        scopes: [read]", `auth.yaml:4: tenants.a.keys[0].sha256: want 64 hex digits (the SHA-256 of the key), got 3 characters`)
	f("tenants:\n  a:\n    keys:\n      - sha256: "+strings.Repeat("zz", 32)+"\n        scopes: [read]", `auth.yaml:4: tenants.a.keys[0].sha256: not hex`)
	f("tenants:\n  a:\n    keys:\n      - sha256: "+h+"\n        scopes: [read, delete]", `auth.yaml:5: tenants.a.keys[0].scopes[1]: unknown scope "delete"; want write, read or admin`)
	f("tenants:\n  a:\n    keys:\n      - sha256: "+h, `auth.yaml:4: tenants.a.keys[0].scopes: missing`)
	f("tenants:\n  a:\n    keys:\n      - scopes: [read]", `auth.yaml:4: tenants.a.keys[0].sha256: missing`)
	f("tenants:\n  a:\n    keys:\n      - sha256: "+h+"\n        scopes: []", `auth.yaml:5: tenants.a.keys[0].scopes: want a non-empty list`)
	f("tenants:\n  a:\n    keys:\n      - sha256: "+h+"\n        scope: [read]", `auth.yaml:5: tenants.a.keys[0].scope: unknown field`)
	f("tenants:\n  a:\n    keys:\n      - {sha256: "+h+", scopes: [read]}\n  b:\n    keys:\n      - {sha256: "+h+", scopes: [write]}",
		`auth.yaml:7: tenants.b.keys[0].sha256: the same key is already given at line 4 (tenant "a")`)
	f("tenants:\n  a:\n    limits: {ingestion_rate: fast}", `auth.yaml:3: tenants.a.limits.ingestion_rate: "fast": want a number`)
	f("tenants:\n  a:\n    limits: {max_streams: -1}", `auth.yaml:3: tenants.a.limits.max_streams: "-1": want a whole number`)
	f("tenants:\n  a:\n    limits: {retention: forever}", `auth.yaml:3: tenants.a.limits.retention: "forever": want a duration`)
	f("tenants:\n  a:\n    limits: {rate: 1}", `auth.yaml:3: tenants.a.limits.rate: unknown field`)
	f("tenants:\n  a:\n    sentry_keys:\n      - {key: abc, project: x}", `auth.yaml:4: tenants.a.sentry_keys[0].project: "x" is not a project id`)
	f("tenants:\n  a:\n    sentry_keys:\n      - {project: 1}", `auth.yaml:4: tenants.a.sentry_keys[0].key: missing`)
	f("tenants:\n  a:\n    sentry_keys:\n      - {key: abc}\n  b:\n    sentry_keys:\n      - {key: abc}", `auth.yaml:7: tenants.b.sentry_keys[0]: the same DSN key is already given at line 4`)
	f("trusted_proxies:\n  cidrs: [10.0.0.0/33]\ntenants: {a: {}}", `auth.yaml:2: trusted_proxies.cidrs[0]: "10.0.0.0/33" is not a CIDR`)
	f("tenants:\n  a:\n    dumps_webhook_url: hooks.example.com/x", `auth.yaml:3: tenants.a.dumps_webhook_url: "hooks.example.com/x": want an http or https URL`)
	f("tenants:\n  a:\n    dumps_webhook_url: [x]", `auth.yaml:3: tenants.a.dumps_webhook_url: "": want an http or https URL`)
	f("tenants:\n  a: {}\n  a: {}", `auth.yaml:3: tenants.a: tenant "a" is listed twice`)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.yaml")
	writeFile(t, path, "tenants:\n  a:\n    keys:\n      - sha256: abc\n        scopes: [read]\n")
	_, err := New(DefaultOptions(path))
	if err == nil || !strings.Contains(err.Error(), path+":4: tenants.a.keys[0].sha256") {
		t.Fatalf("got %v; want the file, line and field", err)
	}
	if _, err := New(DefaultOptions(filepath.Join(t.TempDir(), "none.yaml"))); err == nil || !strings.Contains(err.Error(), "--auth.config") {
		t.Fatalf("got %v; want --auth.config named", err)
	}
}
