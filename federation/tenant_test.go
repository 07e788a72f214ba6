package federation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/vigilhq/vigil/internal/auth"
)

const (
	keyA = "team-a-key-0123456789abcdef0123456789abcdef"
	keyB = "team-b-key-0123456789abcdef0123456789abcdef"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tenantFed is a Federation served twice: url without auth (every request
// the default tenant, as all-in-one without --auth.config) and authURL
// behind the real authenticator of a file with tenants team-a and team-b
// (team-b's max_series: 3).
type tenantFed struct {
	*testFed
	authURL string
}

func startTenantFed(t *testing.T, config string) *tenantFed {
	t.Helper()
	return startTenantFedWith(t, config, "")
}

// startTenantFedWith is startTenantFed with more of the auth file before
// its tenants (trusted_proxies).
func startTenantFedWith(t *testing.T, config, authHead string) *tenantFed {
	t.Helper()
	file := filepath.Join(t.TempDir(), "auth.yaml")
	body := authHead + fmt.Sprintf(`tenants:
  team-a:
    keys: [{sha256: %q, scopes: [write, read]}]
  team-b:
    keys: [{sha256: %q, scopes: [write, read]}]
    limits: {max_series: 3}
`, sha(keyA), sha(keyB))
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{File: file, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	fed := startFedWith(t, t.TempDir(), config, func(o *Options) {
		o.TenantMaxSeries = func(tenant string) int {
			l, _ := a.Limits(tenant)
			return l.MaxSeries
		}
	})
	guarded := httptest.NewServer(a.Handler(fed.mux, func(r *http.Request) auth.Scope {
		if r.Method == http.MethodPost && (r.URL.Path == "/api/v1/write" || strings.HasPrefix(r.URL.Path, "/api/v1/otlp/")) {
			return auth.ScopeWrite
		}
		return auth.ScopeRead
	}))
	t.Cleanup(guarded.Close)
	return &tenantFed{testFed: fed, authURL: guarded.URL}
}

// bearer is an http.RoundTripper sending key.
func bearer(key string) http.RoundTripper {
	if key == "" {
		return http.DefaultTransport
	}
	return config_util.NewAuthorizationCredentialsRoundTripper("Bearer", config_util.NewInlineSecret(key), http.DefaultTransport)
}

// as is the Prometheus API client of the tenant whose key is key; "" is
// the default tenant, on the port without auth.
func (f *tenantFed) as(t *testing.T, key string) (promv1.API, string) {
	t.Helper()
	u := f.url
	if key != "" {
		u = f.authURL
	}
	c, err := api.NewClient(api.Config{Address: u, RoundTripper: bearer(key)})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(c), u
}

// writeAs pushes ts with Prometheus' own remote-write client, as key's
// tenant.
func (f *tenantFed) writeAs(t *testing.T, key string, ts []prompb.TimeSeries) error {
	t.Helper()
	base := f.url
	hc := config_util.HTTPClientConfig{}
	if key != "" {
		base = f.authURL
		hc.Authorization = &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(key)}
	}
	u, _ := url.Parse(base + "/api/v1/write")
	c, err := remote.NewWriteClient("test", &remote.ClientConfig{URL: &config_util.URL{URL: u}, Timeout: model.Duration(10 * time.Second), HTTPClientConfig: hc})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Store(context.Background(), encodeWrite(t, ts), 0)
	return err
}

func pushed(who, extra string, value float64, ts int64) prompb.TimeSeries {
	ls := []prompb.Label{{Name: "__name__", Value: "vigil_tenant_test"}, {Name: "who", Value: who}}
	if extra != "" {
		ls = append(ls, prompb.Label{Name: extra, Value: "x"})
	}
	return prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Timestamp: ts, Value: value}}}
}

// Two tenants push with remote write (one trying to write into the
// other's series) and OTLP; each reads only its own series in every read
// API, without the tenant label, and the default tenant reads neither.
func TestTenantsReadOnlyTheirSeries(t *testing.T) {
	t.Parallel()
	fed := startTenantFed(t, `
global: {evaluation_interval: 200ms}
rule_files: ['`+writeRules(t)+`']
`)
	now := time.Now().UnixMilli()
	a := pushed("a", "only_a", 1, now)
	a.Labels = append(a.Labels, prompb.Label{Name: TenantLabel, Value: "team-b"}) // refused claim
	a.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "aaaa"}}, Value: 1, Timestamp: now}}
	if err := fed.writeAs(t, keyA, []prompb.TimeSeries{a, pushed("a2", "", 2, now)}); err != nil {
		t.Fatalf("team-a's push: %v", err)
	}
	if err := fed.writeAs(t, keyB, []prompb.TimeSeries{pushed("b", "only_b", 10, now)}); err != nil {
		t.Fatalf("team-b's push: %v", err)
	}
	d := pushed("default", "only_default", 100, now)
	d.Labels = append(d.Labels, prompb.Label{Name: TenantLabel, Value: "team-a"}) // refused claim
	if err := fed.writeAs(t, "", []prompb.TimeSeries{d}); err != nil {
		t.Fatalf("the default tenant's push: %v", err)
	}
	otlpAs(t, fed.authURL, keyB)

	cases := []struct {
		tenant, key string
		who         []string // the values of "who" the tenant sees
		only, not   []string // label names it sees and does not
		sum         string   // of the recording rule
	}{
		{"team-a", keyA, []string{"a", "a2"}, []string{"only_a"}, []string{"only_b", "only_default", TenantLabel}, "3"},
		{"team-b", keyB, []string{"b"}, []string{"only_b"}, []string{"only_a", "only_default", TenantLabel}, "10"},
		{"default", "", []string{"default"}, []string{"only_default"}, []string{"only_a", "only_b", TenantLabel}, "100"},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.tenant, func(t *testing.T) {
			api, base := fed.as(t, c.key)
			var want []string
			for _, w := range c.who {
				want = append(want, fmt.Sprintf(`{who="%s"}`, w))
			}
			// query
			expect(t, api, `vigil_tenant_test`, strings.Join(prefixed(want, c.tenant), "\n"), "__name__", "only_a", "only_b", "only_default")
			// the tenant label does not exist for a reader
			expect(t, api, `vigil_tenant_test{vigil_tenant="team-b"}`, "")
			expect(t, api, `count(vigil_tenant_test{vigil_tenant=""})`, fmt.Sprintf("{}=%d", len(c.who)))
			// a recording rule's output: each tenant's own sum
			expect(t, api, `vigil_tenant_test:sum`, "{}="+c.sum, "__name__")
			// query_range
			r, _, _, err := api.QueryRange(ctx, `count(vigil_tenant_test)`, promv1.Range{Start: time.UnixMilli(now), End: time.UnixMilli(now).Add(time.Second), Step: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if m := r.(model.Matrix); len(m) != 1 || int(m[0].Values[0].Value) != len(c.who) {
				t.Errorf("query_range count: got %v; want %d", r, len(c.who))
			}
			// series
			ss, _, _, err := api.Series(ctx, []string{`{__name__="vigil_tenant_test"}`}, time.UnixMilli(now).Add(-time.Minute), time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var who []string
			for _, s := range ss {
				if _, ok := s[TenantLabel]; ok {
					t.Errorf("series %v carries %s", s, TenantLabel)
				}
				who = append(who, string(s["who"]))
			}
			slices.Sort(who)
			if !slices.Equal(who, c.who) {
				t.Errorf("series: got who=%v; want %v", who, c.who)
			}
			// labels, without match[] and with
			for _, match := range [][]string{nil, {`{__name__=~"vigil_tenant_test"}`}} {
				names, _, _, err := api.LabelNames(ctx, match, time.Time{}, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range c.only {
					if !slices.Contains(names, model.LabelName(n)) {
						t.Errorf("labels %v: got %v; want %s in it", match, names, n)
					}
				}
				for _, n := range c.not {
					if slices.Contains(names, model.LabelName(n)) {
						t.Errorf("labels %v: got %v; want no %s", match, names, n)
					}
				}
			}
			// label values
			vals, _, _, err := api.LabelValues(ctx, "who", nil, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(vals); got != fmt.Sprint(c.who) {
				t.Errorf("label values of who: got %s; want %v", got, c.who)
			}
			if vals, _, _, err := api.LabelValues(ctx, TenantLabel, nil, time.Time{}, time.Time{}); err != nil || len(vals) != 0 {
				t.Errorf("label values of %s: got %v, %v; want none", TenantLabel, vals, err)
			}
			// exemplars
			ex, err := api.QueryExemplars(ctx, `vigil_tenant_test`, time.UnixMilli(now).Add(-time.Minute), time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(ex), map[string]int{"team-a": 1}[c.tenant]; got != want {
				t.Errorf("exemplars: got %v; want %d series", ex, want)
			}
			// remote read, with Prometheus' own client (sorted, chunked)
			if got := remoteReadWho(t, base, c.key); !slices.Equal(got, c.who) {
				t.Errorf("remote read: who=%v; want %v", got, c.who)
			}
			// /federate
			fedOut := federateAs(t, base, c.key, `{__name__="vigil_tenant_test"}`)
			for _, w := range []string{"a", "a2", "b", "default"} {
				line := fmt.Sprintf(`who="%s"`, w)
				if got, want := strings.Contains(fedOut, line), slices.Contains(c.who, w); got != want {
					t.Errorf("/federate holds %s: %v; want %v:\n%s", line, got, want, fedOut)
				}
			}
			if strings.Contains(fedOut, TenantLabel+"=") {
				t.Errorf("/federate shows %s:\n%s", TenantLabel, fedOut)
			}
			// alerts and rules: the tenant's alerts only
			waitFor(t, 30*time.Second, func() error {
				as, err := api.Alerts(ctx)
				if err != nil {
					return err
				}
				rs, err := api.Rules(ctx, nil)
				if err != nil {
					return err
				}
				var fromRules []promv1.Alert
				for _, g := range rs.Groups {
					for _, r := range g.Rules {
						if ar, ok := r.(promv1.AlertingRule); ok {
							for _, a := range ar.Alerts {
								fromRules = append(fromRules, *a)
							}
						}
					}
				}
				for what, list := range map[string][]promv1.Alert{"alerts": as.Alerts, "rules": fromRules} {
					var who []string
					for _, a := range list {
						if _, ok := a.Labels[TenantLabel]; ok {
							return fmt.Errorf("%s: alert %v carries %s", what, a.Labels, TenantLabel)
						}
						who = append(who, string(a.Labels["who"]))
					}
					slices.Sort(who)
					if !slices.Equal(who, c.who) {
						return fmt.Errorf("%s: alerts of who=%v; want %v", what, who, c.who)
					}
				}
				return nil
			})
			// the TSDB's statistics cover every tenant: admin only
			resp, err := (&http.Client{Transport: bearer(c.key)}).Get(base + "/api/v1/status/tsdb")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[bool]int{true: 200, false: 403}[c.key == ""]; resp.StatusCode != want {
				t.Errorf("/api/v1/status/tsdb: %s; want %d", resp.Status, want)
			}
			// OTLP metrics of team-b
			want = nil
			if c.tenant == "team-b" {
				want = []string{`vigil_tenant_otlp_total=1`}
			}
			expect(t, api, `vigil_tenant_otlp_total`, strings.Join(want, "\n"), "job", "instance", "otel_scope_name", "otel_scope_version", "otel_scope_schema_url")
		})
	}
}

// prefixed gives each selector its sample value, as values prints them.
func prefixed(sel []string, tenant string) []string {
	v := map[string]string{`{who="a"}`: "1", `{who="a2"}`: "2", `{who="b"}`: "10", `{who="default"}`: "100"}
	out := make([]string, len(sel))
	for i, s := range sel {
		out[i] = s + "=" + v[s]
	}
	_ = tenant
	return out
}

func writeRules(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yml")
	rules := `groups:
  - name: tenants
    rules:
      - record: vigil_tenant_test:sum
        expr: sum(vigil_tenant_test)
      - alert: VigilTenantTest
        expr: vigil_tenant_test > 0
`
	if err := os.WriteFile(p, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func federateAs(t *testing.T, base, key, match string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/federate?match[]="+url.QueryEscape(match), nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := (&http.Client{Transport: bearer(key)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/federate: %s: %s", resp.Status, b)
	}
	return string(b)
}

// otlpAs pushes one counter with the OpenTelemetry SDK's OTLP/HTTP
// exporter, with key.
func otlpAs(t *testing.T, base, key string) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(base+"/api/v1/otlp/v1/metrics"),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + key}),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(semconv.ServiceName("checkout"))))
	c, _ := mp.Meter("test").Int64Counter("vigil_tenant_otlp")
	c.Add(ctx, 1, otelmetric.WithAttributes(attribute.String(TenantLabel, "team-a"))) // refused claim
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, &rm); err != nil {
		t.Fatalf("OTLP export: %v", err)
	}
}

// A tenant's max_series bounds its own new series: past it they are
// refused with 400 naming the limit while its existing series and other
// tenants' new series are accepted, and the refusals are counted.
func TestTenantMaxSeries(t *testing.T) {
	t.Parallel()
	fed := startTenantFed(t, "")
	now := time.Now().UnixMilli()
	five := func(who string, ts int64) []prompb.TimeSeries {
		var out []prompb.TimeSeries
		for i := range 5 {
			out = append(out, pushed(fmt.Sprintf("%s%d", who, i), "", float64(i), ts))
		}
		return out
	}
	err := fed.writeAs(t, keyB, five("b", now))
	var rec remote.RecoverableError
	if err == nil || errors.As(err, &rec) {
		t.Fatalf("team-b's 5 new series over max_series 3: got %v; want a 400 the client does not retry", err)
	}
	for _, want := range []string{"400", "2 samples of new series were refused", `tenant "team-b"`, "max_series"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("answer %q; want it to say %q", err, want)
		}
	}
	b, _ := fed.as(t, keyB)
	expect(t, b, `count(vigil_tenant_test)`, "{}=3")
	// Its existing series keep taking samples; other tenants are not bound.
	if err := fed.writeAs(t, keyB, five("b", now+1000)[:3]); err != nil {
		t.Errorf("samples of team-b's existing series: %v", err)
	}
	if err := fed.writeAs(t, keyA, five("a", now)); err != nil {
		t.Errorf("team-a's 5 series: %v", err)
	}
	if err := fed.writeAs(t, "", five("d", now)); err != nil {
		t.Errorf("the default tenant's 5 series: %v", err)
	}
	a, _ := fed.as(t, keyA)
	expect(t, a, `count(vigil_tenant_test)`, "{}=5")
	if got := metricValue(t, fed.testFed, "vigil_federation_tenant_series_refused_total", "tenant", "team-b"); got != 2 {
		t.Errorf("vigil_federation_tenant_series_refused_total{tenant=team-b} = %v; want 2", got)
	}
	if got := metricValue(t, fed.testFed, "vigil_federation_tenant_active_series", "tenant", "team-b"); got != 3 {
		t.Errorf("vigil_federation_tenant_active_series{tenant=team-b} = %v; want 3", got)
	}
	if got := metricValue(t, fed.testFed, "vigil_federation_push_refused_samples_total", "limit", "max_series"); got != 2 {
		t.Errorf("vigil_federation_push_refused_samples_total{limit=max_series} = %v; want 2", got)
	}
}

// Before any tenant has written, the default tenant's reads are not
// rewritten; a tenant's series created meanwhile is still left out of
// them, and the label stays hidden.
func TestDefaultReadsBeforeTheFirstTenant(t *testing.T) {
	t.Parallel()
	fed := startFed(t, t.TempDir(), "")
	app := fed.Appendable().Appender(context.Background())
	now := time.Now().UnixMilli()
	for _, ls := range []labels.Labels{
		labels.FromStrings("__name__", "vigil_tenant_test", "who", "default"),
		labels.FromStrings("__name__", "vigil_tenant_test", "who", "a", TenantLabel, "team-a"),
	} {
		if _, err := app.Append(0, ls, now, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if !fed.tenants.seen.Load() {
		t.Error("a tenant's series exists and the flag is not set")
	}
	// The moment between the series' creation and the flag.
	fed.tenants.seen.Store(false)
	c := client(t, fed.url)
	expect(t, c, `vigil_tenant_test`, `vigil_tenant_test{who="default"}=1`)
	vals, _, _, err := c.LabelValues(context.Background(), TenantLabel, nil, time.Time{}, time.Time{})
	if err != nil || len(vals) != 0 {
		t.Errorf("label values of %s: %v, %v; want none", TenantLabel, vals, err)
	}
	names, _, _, err := c.LabelNames(context.Background(), nil, time.Time{}, time.Time{})
	if err != nil || slices.Contains(names, model.LabelName(TenantLabel)) {
		t.Errorf("label names %v, %v; want no %s", names, err, TenantLabel)
	}
}

// remoteReadWho reads vigil_tenant_test by remote read as key's tenant and
// returns the values of who, failing on a series that shows TenantLabel.
func remoteReadWho(t *testing.T, base, key string) []string {
	t.Helper()
	u, _ := url.Parse(base + "/api/v1/read")
	hc := config_util.HTTPClientConfig{}
	if key != "" {
		hc.Authorization = &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(key)}
	}
	rc, err := remote.NewReadClient("test", &remote.ClientConfig{URL: &config_util.URL{URL: u}, Timeout: model.Duration(10 * time.Second),
		HTTPClientConfig: hc, ChunkedReadLimit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	q, err := remote.ToQuery(0, time.Now().Add(time.Minute).UnixMilli(),
		[]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "vigil_tenant_test")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	set, err := rc.Read(context.Background(), q, true)
	if err != nil {
		t.Fatalf("remote read: %v", err)
	}
	var who []string
	for set.Next() {
		ls := set.At().Labels()
		if ls.Has(TenantLabel) {
			t.Errorf("remote read: %s carries %s", ls, TenantLabel)
		}
		who = append(who, ls.Get("who"))
	}
	if err := set.Err(); err != nil {
		t.Fatalf("remote read: %v", err)
	}
	return who
}

// A tenant's retention deletes its older samples, and only its own.
func TestTenantRetention(t *testing.T) {
	t.Parallel()
	fed := startTenantFed(t, "")
	now := time.Now()
	old, recent := now.Add(-2*time.Hour).UnixMilli(), now.Add(-time.Minute).UnixMilli()
	// The old samples first: the TSDB's head takes samples in time order.
	for _, ts := range []int64{old, recent} {
		for _, w := range []struct{ key, who string }{{keyA, "a"}, {keyB, "b"}, {"", "d"}} {
			if err := fed.writeAs(t, w.key, []prompb.TimeSeries{pushed(w.who, "", 1, ts)}); err != nil {
				t.Fatalf("push of %s at %d: %v", w.who, ts, err)
			}
		}
	}
	a, _ := fed.as(t, keyA)
	b, _ := fed.as(t, keyB)
	d, _ := fed.as(t, "")
	const samples = `count_over_time(vigil_tenant_test[3h])`
	expect(t, a, samples, `{who="a"}=2`)
	n, err := fed.applyTenantRetention(context.Background(), now, map[string]time.Duration{"team-a": time.Hour, "default": time.Hour, "team-c": time.Hour})
	if err != nil || n != 3 {
		t.Fatalf("retention pass: %d tenants pruned, %v; want 3, nil", n, err)
	}
	expect(t, a, samples, `{who="a"}=1`)
	expect(t, d, samples, `{who="d"}=1`)
	expect(t, b, samples, `{who="b"}=2`)
}
