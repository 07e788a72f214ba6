package profiles

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
)

func getPage(t *testing.T, f *fixture, u string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Request.URL.Path
}

func TestPprofWebUI(t *testing.T) {
	f := newFixture(t)
	sel := with(hour(), "query", `cpu{service="checkout"}`)
	// The selection's page redirects to its frozen form, then to pprof's
	// flame graph.
	code, body, final := getPage(t, f, f.srv.URL+UIPrefix+"?"+sel.Encode())
	if code != 200 || !strings.HasPrefix(final, UIPrefix+"s/") || !strings.HasSuffix(final, "/flamegraph") || !strings.Contains(body, "pricing.Compute") {
		t.Fatalf("flame graph: %d at %s\n%.400s", code, final, body)
	}
	base := f.srv.URL + strings.TrimSuffix(final, "flamegraph")
	for _, c := range []struct{ page, want string }{
		{"top", "pricing.Compute"},
		{"top?si=cpu", "1470ms"},
		{"peek?f=cart.Total", "pricing.Compute"},
		{"source?f=pricing.Compute", "pricing.Compute"},
		{"flamegraph?f=json.Marshal", "json.Marshal"},
	} {
		code, body, _ := getPage(t, f, base+c.page)
		if code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d, want 200 with %q\n%.400s", c.page, code, c.want, body)
		}
	}
	if _, err := exec.LookPath("dot"); err == nil {
		if code, body, _ := getPage(t, f, base+"graph"); code != 200 || !strings.Contains(body, "pricing") {
			t.Errorf("graph: %d\n%.400s", code, body)
		}
	}
	// pprof's settings are not written on this machine.
	resp, err := http.Post(base+"saveconfig?config=x", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("saveconfig: %d, want 403", resp.StatusCode)
	}
	// A bad selection is a 400 naming it.
	code, body, _ = getPage(t, f, f.srv.URL+UIPrefix+"?query="+url.QueryEscape(`cpu{service=}`))
	if code != 400 || !strings.Contains(body, "service") {
		t.Fatalf("bad selection: %d %s", code, body)
	}
	code, _, _ = getPage(t, f, f.srv.URL+UIPrefix+"s/!!!/top")
	if code != 400 {
		t.Fatalf("bad token: %d", code)
	}
	if got := f.counter(t, "vigil_profile_query_bad_requests_total", "ui"); got != 2 {
		t.Fatalf("bad UI requests counted %v, want 2", got)
	}
}

// Only a few UIs are kept; an evicted one is rebuilt from its address.
func TestPprofWebUIIsBounded(t *testing.T) {
	f := newFixture(t)
	var first string
	for i, q := range []string{`cpu`, `cpu{service="cart"}`, `cpu{service="checkout"}`, `heap`, `cpu{env="prod"}`, `cpu{}`, `cpu{job="cart"}`, `cpu{instance="a:8080"}`, `cpu{instance="b:8080"}`, `heap{env="prod"}`} {
		code, _, final := getPage(t, f, f.srv.URL+UIPrefix+"?"+with(hour(), "query", q).Encode())
		if code != 200 {
			t.Fatalf("%s: %d", q, code)
		}
		if i == 0 {
			first = final
		}
	}
	if n := f.api.ui.len(); n != 8 {
		t.Fatalf("%d UIs cached, want the limit of 8", n)
	}
	code, body, _ := getPage(t, f, f.srv.URL+strings.TrimSuffix(first, "flamegraph")+"top")
	if code != 200 || !strings.Contains(body, "pricing.Compute") {
		t.Fatalf("evicted UI: %d\n%.300s", code, body)
	}
}

// A profile naming a file of this machine as its source shows nothing of
// it: pprof's source view looks for sources where none can be.
func TestPprofWebUIReadsNoLocalFile(t *testing.T) {
	f := newFixture(t)
	secret := filepath.Join(t.TempDir(), "secret.go")
	if err := os.WriteFile(secret, []byte("package secret // TOP-SECRET-MARKER\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fn := &profile.Function{ID: 1, Name: "secret.Leak", Filename: secret}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 1,
		Function: []*profile.Function{fn},
		Location: []*profile.Location{{ID: 1, Line: []profile.Line{{Function: fn, Line: 1}}}},
	}
	p.Sample = []*profile.Sample{{Location: p.Location, Value: []int64{1e9}}}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	if err := f.store.Write(context.Background(), []model.Profile{model.NewProfile("cpu", map[string]string{"service": "evil"}, at.UnixNano(), 0, b.Bytes())}); err != nil {
		t.Fatal(err)
	}
	code, _, final := getPage(t, f, f.srv.URL+UIPrefix+"?"+with(hour(), "query", `cpu{service="evil"}`).Encode())
	if code != 200 {
		t.Fatal(code)
	}
	code, body, _ := getPage(t, f, f.srv.URL+strings.TrimSuffix(final, "flamegraph")+"source?f=secret.Leak")
	if code != 200 || !strings.Contains(body, "secret.Leak") || strings.Contains(body, "TOP-SECRET-MARKER") {
		t.Fatalf("source view: %d\n%.600s", code, body)
	}
}

// The same selection asked by two tenants is two UIs: a cached UI, built
// from one tenant's profiles, is never served to another.
func TestPprofWebUIIsPerTenant(t *testing.T) {
	f := newFixture(t)
	asTenant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.api.ui.ServeHTTP(w, r.WithContext(auth.WithTenant(r.Context(), r.Header.Get("X-Test-Tenant"))))
	}))
	defer asTenant.Close()
	get := func(tenant, u string) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Test-Tenant", tenant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s as %s: %d", u, tenant, resp.StatusCode)
		}
	}
	_, _, final := getPage(t, f, f.srv.URL+UIPrefix+"?"+with(hour(), "query", `cpu{service="checkout"}`).Encode())
	before := f.api.ui.len()
	get("team-a", asTenant.URL+final)
	get("team-b", asTenant.URL+final)
	get("team-a", asTenant.URL+strings.TrimSuffix(final, "flamegraph")+"top")
	if got := f.api.ui.len(); got != before+2 {
		t.Fatalf("%d UIs cached after team-a and team-b asked for one selection (%d before); want one more each", got, before)
	}
}
