//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTenantQueryRange runs all-in-one with two tenants: team-a's
// max_query_range of 1d refuses its 3-day Loki and Prometheus range
// queries with a 400 naming the tenant's limit, while team-b, held to
// --query.max-range (31d), gets the same queries answered; the refusals
// are counted in vigil_query_limit_refused_total{reason="range"}.
func TestTenantQueryRange(t *testing.T) {
	const keyA, keyB = "qrange-team-a-91f0", "qrange-team-b-03c2"
	dir := t.TempDir()
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`tenants:
  team-a:
    keys: [{sha256: %q, scopes: [write, read]}]
    limits: {max_query_range: 1d}
  team-b:
    keys: [{sha256: %q, scopes: [write, read]}]
`, sha(keyA), sha(keyB))), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", conf)
	end := time.Now().UTC().Truncate(time.Second)
	start := end.Add(-72 * time.Hour)
	loki := "http://" + p.query + "/loki/api/v1/query_range?" + url.Values{
		"query": {`{service="checkout"}`}, "start": {start.Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)},
	}.Encode()
	prom := "http://" + p.query + "/api/v1/query_range?" + url.Values{
		"query": {"up"}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}, "step": {"3600"},
	}.Encode()
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }

	for _, u := range []string{loki, prom} {
		code, _, body := authRequest(t, "GET", u, nil, bearer(keyA)...)
		// Loki answers in plain text, Prometheus in JSON.
		if code != 400 || !strings.Contains(strings.ReplaceAll(body, `\"`, `"`), `exceeds the limit of 1d of tenant "team-a" (max_query_range in --auth.config)`) {
			t.Errorf("team-a, 3 days, %s: got %d %s; want 400 naming team-a's max_query_range", u, code, body)
		}
		if code, _, body := authRequest(t, "GET", u, nil, bearer(keyB)...); code != 200 {
			t.Errorf("team-b, 3 days, %s: got %d %s; want 200", u, code, body)
		}
	}
	if got := metric(t, p.query, "vigil_query_limit_refused_total", "reason", "range"); got != 2 {
		t.Errorf(`vigil_query_limit_refused_total{reason="range"} = %v; want 2`, got)
	}
}
