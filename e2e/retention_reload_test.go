//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTenantRetentionChangesWithoutRestart shortens a tenant's retention
// in --auth.config while all-in-one runs: the tenant's lines now past it
// are gone within a reload, its recent ones stay, and the default tenant
// keeps its old lines. The daemon is never restarted.
func TestTenantRetentionChangesWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "auth.yaml")
	authFile := func(retention string) {
		c := fmt.Sprintf("tenants:\n  team-a:\n    keys:\n      - sha256: %q\n        scopes: [write, read]\n    limits: {retention: %s}\n"+
			"  default:\n    keys:\n      - sha256: %q\n        scopes: [write, read]\n", sha(authWriter), retention, sha(authOther))
		tmp := conf + ".tmp"
		if err := os.WriteFile(tmp, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	authFile("30d")
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", conf, "--retention", "0")
	pid := p.vigil.Pid()

	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour)
	for _, key := range []string{authWriter, authOther} {
		var body strings.Builder
		for _, ts := range []time.Time{old, now} {
			fmt.Fprintf(&body, `{"timestamp":%d,"service":"keep","message":"line of %s"}`+"\n", ts.UnixNano(), ts.Format(time.DateOnly))
		}
		if code, resp := p.post("/api/v1/logs", "application/x-ndjson", []byte(body.String()), "Authorization", "Bearer "+key); code != 200 {
			t.Fatalf("POST lines: %d %s", code, resp)
		}
	}
	lines := func(key string) int {
		t.Helper()
		v := url.Values{"query": {`{service="keep"}`}, "start": {strconv.FormatInt(old.Add(-time.Hour).UnixNano(), 10)},
			"end": {strconv.FormatInt(now.Add(time.Hour).UnixNano(), 10)}, "limit": {"100"}}
		code, b, err := request(p.query, "GET", "/loki/api/v1/query_range?"+v.Encode(), "", key)
		if err != nil || code != 200 {
			t.Fatalf("query_range: %d %v %s", code, err, b)
		}
		var lr struct {
			Data struct {
				Result []lokiStream `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(b), &lr); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range lr.Data.Result {
			n += len(s.Values)
		}
		return n
	}
	eventually(t, 20*time.Second, "both tenants' lines stored", func() (bool, string) {
		a, d := lines(authWriter), lines(authOther)
		return a == 2 && d == 2, fmt.Sprintf("team-a %d, default %d", a, d)
	})

	authFile("7d")
	eventually(t, 30*time.Second, "team-a's line of 10 days ago gone", func() (bool, string) {
		n := lines(authWriter)
		return n == 1, fmt.Sprintf("team-a has %d lines", n)
	})
	if n := lines(authOther); n != 2 {
		t.Errorf("default tenant: %d lines after team-a's retention changed; want its 2", n)
	}
	if got := p.vigil.Pid(); got != pid {
		t.Errorf("the daemon was restarted: pid %d, was %d", got, pid)
	}
}
