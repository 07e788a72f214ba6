package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTest returns an Authenticator over testdata/configs/full.yaml copied
// to a temporary file, and its registry.
func newTest(t testing.TB, interval time.Duration) (*Authenticator, *prometheus.Registry, string) {
	t.Helper()
	b, err := os.ReadFile("testdata/configs/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth.yaml")
	writeFile(t, path, string(b))
	reg := prometheus.NewRegistry()
	o := DefaultOptions(path)
	o.CheckInterval, o.Registerer = interval, reg
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a, reg, path
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestMiddleware(t *testing.T) {
	a, _, _ := newTest(t, 0)
	var tenant string
	h := a.Middleware(ScopeWrite)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant = Tenant(r.Context())
	}))
	f := func(remote string, header http.Header, wantStatus int, wantTenant, wantReason string) {
		t.Helper()
		before := testutil.ToFloat64(a.metrics.refused.WithLabelValues(wantReason))
		accepted := testutil.ToFloat64(a.metrics.accepted)
		r := httptest.NewRequest("POST", "/loki/api/v1/push", nil)
		r.RemoteAddr = remote
		r.Header = header
		w := httptest.NewRecorder()
		tenant = ""
		h.ServeHTTP(w, r)
		if w.Code != wantStatus {
			t.Fatalf("%v: got %d %s; want %d", header, w.Code, w.Body, wantStatus)
		}
		if wantStatus == 200 {
			if tenant != wantTenant {
				t.Errorf("%v: got tenant %q; want %q", header, tenant, wantTenant)
			}
			if got := testutil.ToFloat64(a.metrics.accepted); got != accepted+1 {
				t.Errorf("got vigil_auth_accepted_total %v; want %v", got, accepted+1)
			}
			return
		}
		var body struct{ Status, ErrorType, Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Status != "error" || body.Error == "" {
			t.Errorf("got body %q; want the API's error shape", w.Body)
		}
		if got := w.Header().Get("WWW-Authenticate"); (wantStatus == 401) != (got == `Basic realm="vigil"`) {
			t.Errorf("got WWW-Authenticate %q on %d", got, wantStatus)
		}
		if got := testutil.ToFloat64(a.metrics.refused.WithLabelValues(wantReason)); got != before+1 {
			t.Errorf("got vigil_auth_refused_total{reason=%q} %v; want %v", wantReason, got, before+1)
		}
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	const outside, proxy = "203.0.113.5:5000", "10.1.2.3:5000"
	f(outside, hdr("Authorization", "Bearer a-write-read"), 200, "team-a", "")
	f(outside, hdr("Authorization", "bearer  a-write-read "), 200, "team-a", "")
	f(outside, hdr("Authorization", basic("team-a", "a-write-read")), 200, "team-a", "")
	f(outside, hdr("Authorization", basic("", "b-admin")), 200, "team-b", "")
	f(outside, hdr("Authorization", "Bearer a-write-read", OrgIDHeader, "team-a"), 200, "team-a", "")
	f(proxy, hdr(OrgIDHeader, "team-b"), 200, "team-b", "")
	f("[::ffff:192.168.1.7]:80", hdr(OrgIDHeader, "team-a"), 200, "team-a", "")

	f(outside, hdr(), 401, "", ReasonMissing)
	f(outside, hdr("Authorization", "Bearer nope"), 401, "", ReasonInvalidKey)
	f(outside, hdr("Authorization", basic("team-a", "")), 401, "", ReasonMalformed)
	f(outside, hdr("Authorization", "Basic !!!"), 401, "", ReasonMalformed)
	f(outside, hdr("Authorization", "Digest x"), 401, "", ReasonMalformed)
	f(outside, hdr("Authorization", "Bearer "+strings.Repeat("k", 5000)), 401, "", ReasonMalformed)
	f(outside, hdr(OrgIDHeader, "team-a"), 401, "", ReasonUntrustedProxy)
	f(outside, hdr("Authorization", "Bearer a-read"), 403, "", ReasonScope)
	f(outside, hdr("Authorization", "Bearer a-write-read", OrgIDHeader, "team-b"), 403, "", ReasonTenant)
	f(proxy, hdr(OrgIDHeader, "team-c"), 403, "", ReasonUnknownTenant)

	// A trusted proxy may write and read, as configured, not administer.
	ha := a.Middleware(ScopeAdmin)(http.NotFoundHandler())
	r := httptest.NewRequest("GET", "/debug/pprof/", nil)
	r.RemoteAddr, r.Header = proxy, hdr(OrgIDHeader, "team-b")
	w := httptest.NewRecorder()
	ha.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("proxy asking admin: got %d; want 403", w.Code)
	}
}

// TestErrorShapes: each API's clients read the refusal in their own shape.
func TestErrorShapes(t *testing.T) {
	a, _, _ := newTest(t, 0)
	h := a.Middleware(ScopeRead)(http.NotFoundHandler())
	f := func(path, want string) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 401 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: got %d %s; want 401 with %s", path, w.Code, w.Body, want)
		}
	}
	f("/api/v1/query", `"status":"error"`)
	f("/loki/api/v1/query_range", `"errorType":"unauthorized"`)
	f("/api/traces/abc", `"errors":[{"code":401,"msg":"missing credentials`)
	f("/api/v3/services", `"errors":[{"code":401`)
	f("/api/0/organizations/", `{"detail":"missing credentials`)
}

func TestOffIsDefaultTenant(t *testing.T) {
	var a *Authenticator // auth off
	var tenant string
	h := a.Middleware(ScopeAdmin)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tenant = Tenant(r.Context()) }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 200 || tenant != DefaultTenant {
		t.Errorf("got %d tenant %q; want 200 %q", w.Code, tenant, DefaultTenant)
	}
	if len(a.ServerOptions(ScopeWrite)) != 0 {
		t.Error("got gRPC interceptors with auth off")
	}
	if _, ok := a.Limits("default"); ok {
		t.Error("got limits with auth off")
	}
}

func TestOpenScope(t *testing.T) {
	a, _, _ := newTest(t, 0)
	h := a.Handler(http.NotFoundHandler(), func(r *http.Request) Scope {
		if r.URL.Path == "/metrics" {
			return Open
		}
		return ScopeRead
	})
	for path, want := range map[string]int{"/metrics": 404, "/api/v1/query": 401} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("%s: got %d; want %d", path, w.Code, want)
		}
	}
}

// TestFullHashCompared: keys sharing the 8-byte bucket prefix of the
// presented key's hash are told apart by the constant-time comparison of
// the whole hash.
func TestFullHashCompared(t *testing.T) {
	sum := sha256.Sum256([]byte("presented"))
	near := sum
	near[31] ^= 1
	other := &key{sum: near, tenant: &TenantConfig{ID: "x"}, scopes: ScopeRead}
	m := map[uint64][]*key{prefix(sum): {other}}
	if k := find(m, sum); k != nil {
		t.Fatalf("got key of tenant %s for a hash differing in its last byte", k.tenant.ID)
	}
	exact := &key{sum: sum, tenant: &TenantConfig{ID: "y"}}
	m[prefix(sum)] = append(m[prefix(sum)], exact)
	if k := find(m, sum); k != exact {
		t.Fatalf("got %v; want the key with the same hash", k)
	}
}

func TestAuthenticateDSN(t *testing.T) {
	a, _, _ := newTest(t, 0)
	f := func(key, project, wantTenant, wantReason string) {
		t.Helper()
		id, err := a.AuthenticateDSN(key, project)
		if wantReason == "" {
			if err != nil || id.Tenant != wantTenant || id.Project != project {
				t.Fatalf("%s/%s: got %+v %v; want tenant %s", key, project, id, err, wantTenant)
			}
			return
		}
		e, ok := err.(*Error)
		if !ok || e.Reason != wantReason {
			t.Fatalf("%s/%s: got %v; want reason %s", key, project, err, wantReason)
		}
	}
	f("dsnkeya", "42", "team-a", "")
	f("dsnkeyb", "7", "team-b", "")
	f("dsnkeya", "43", "", ReasonProject)
	f("unknown", "42", "", ReasonInvalidKey)
	f("", "42", "", ReasonMissing)
	f("a-write-read", "42", "", ReasonInvalidKey) // API keys are not DSN keys
}

// TestReloadWhileRequestsFlow edits the file while requests flow: the
// key kept across the edit never fails, the new key works once the
// reload happened, the removed one stops, and a bad file keeps the
// previous configuration, reported in the metrics.
func TestReloadWhileRequestsFlow(t *testing.T) {
	a, reg, path := newTest(t, 5*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	h := a.Middleware(ScopeRead)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	do := func(key string) int {
		r := httptest.NewRequest("GET", "/api/v1/query", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	var failed, served atomic.Int64
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if do("a-read") != 200 {
					failed.Add(1)
				}
				served.Add(1)
			}
		}()
	}
	orig, _ := os.ReadFile(path)
	rotated := strings.Replace(string(orig), hash("b-admin"), hash("b-rotated"), 1)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	for i := range 10 {
		content := rotated
		if i%2 == 1 {
			content = string(orig)
		}
		writeFile(t, path, content)
		newKey, oldKey := "b-rotated", "b-admin"
		if i%2 == 1 {
			newKey, oldKey = oldKey, newKey
		}
		waitFor("the rotated key", func() bool { return do(newKey) == 200 })
		if got := do(oldKey); got != 401 {
			t.Fatalf("got %d for the removed key; want 401", got)
		}
	}
	writeFile(t, path, "tenants: {broken")
	waitFor("the failed reload", func() bool { return testutil.ToFloat64(a.metrics.lastOK) == 0 })
	if got := do("b-admin"); got != 200 {
		t.Errorf("got %d after a bad file; want the previous configuration's 200", got)
	}
	close(stop)
	clients.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests with a key kept across reloads failed", failed.Load(), served.Load())
	}
	n, err := testutil.GatherAndCount(reg, "vigil_auth_config_reloads_total")
	if err != nil || n != 2 {
		t.Errorf("got %d series of vigil_auth_config_reloads_total (%v); want success and failure", n, err)
	}
}

// BenchmarkMiddleware is the cost authentication adds to each request:
// a Bearer key hashed, found and compared, the identity put on the context.
func BenchmarkMiddleware(b *testing.B) {
	a, _, _ := newTest(b, 0)
	h := a.Middleware(ScopeWrite)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("POST", "/loki/api/v1/push", nil)
	r.Header.Set("Authorization", "Bearer a-write-read")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if w.Code != 200 {
		b.Fatalf("got %d", w.Code)
	}
}

// TestOnReload: the hooks run after each successful reload, with the new
// configuration in effect, and not after a file that does not parse.
func TestOnReload(t *testing.T) {
	a, _, path := newTest(t, 0)
	var seen []time.Duration
	a.OnReload(func() {
		l, _ := a.Limits("team-a")
		seen = append(seen, l.Retention)
	})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, strings.Replace(string(b), "retention: 14d", "retention: 7d", 1))
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "tenants: [")
	if err := a.Reload(); err == nil {
		t.Fatal("a file that does not parse was loaded")
	}
	if want := []time.Duration{7 * 24 * time.Hour}; !slices.Equal(seen, want) {
		t.Errorf("retention seen by the hook: %v; want %v", seen, want)
	}
}
