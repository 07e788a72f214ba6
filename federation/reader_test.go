package federation

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/internal/auth"
)

// A Reader in another process's place: PromQL over remote read gets the
// federation's samples, and its proxied API answers as the federation.
func TestReader(t *testing.T) {
	t.Parallel()
	fed := startFed(t, t.TempDir(), "")
	now := time.Now()
	var ts []prompb.TimeSeries
	for i := range 3 {
		ts = append(ts, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "vigil_test_calls_total"}, {Name: "service_name", Value: "checkout"}},
			Samples: []prompb.Sample{{Timestamp: now.Add(time.Duration(i-2) * 10 * time.Second).UnixMilli(), Value: float64(100 * i)}},
		})
	}
	if code, msg := remoteWrite(t, fed.url, ts); code/100 != 2 {
		t.Fatalf("remote write: %d %s", code, msg)
	}
	r, err := NewReader(ReaderOptions{URL: fed.url})
	if err != nil {
		t.Fatal(err)
	}
	// The same answer as the federation's own engine on its own TSDB.
	eval := func(e interface {
		NewInstantQuery(context.Context, storage.Queryable, promql.QueryOpts, string, time.Time) (promql.Query, error)
	}, qa storage.Queryable) string {
		q, err := e.NewInstantQuery(context.Background(), qa, nil, `sum by (service_name) (rate(vigil_test_calls_total[30s]))`, now)
		if err != nil {
			t.Fatal(err)
		}
		res := q.Exec(context.Background())
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return res.String()
	}
	got, want := eval(r.Engine(), r.Queryable()), eval(fed.Engine(), fed.Queryable())
	if got != want || !strings.Contains(got, `{service_name="checkout"} =>`) {
		t.Errorf("rate over remote read: %s; want the federation's own %s", got, want)
	}

	mux := http.NewServeMux()
	r.RegisterHTTP(mux)
	proxy := httptest.NewServer(mux)
	t.Cleanup(proxy.Close)
	expect(t, client(t, proxy.URL), `vigil_test_calls_total`, `vigil_test_calls_total{service_name="checkout"}=200`)

	if _, err := NewReader(ReaderOptions{URL: "federation:9095"}); err == nil {
		t.Error("a URL without a scheme was taken")
	}
}

// A query made for a tenant reads that tenant's series over remote read:
// the reader sends its tenant to a federation that trusts it as a proxy.
func TestReaderReadsAsTheQuerysTenant(t *testing.T) {
	t.Parallel()
	fed := startTenantFedWith(t, "", "trusted_proxies: {cidrs: [127.0.0.1/32, \"::1/128\"]}\n")
	now := time.Now().UnixMilli()
	if err := fed.writeAs(t, keyA, []prompb.TimeSeries{pushed("a", "", 1, now)}); err != nil {
		t.Fatal(err)
	}
	if err := fed.writeAs(t, keyB, []prompb.TimeSeries{pushed("b", "", 1, now)}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(ReaderOptions{URL: fed.authURL})
	if err != nil {
		t.Fatal(err)
	}
	for tenant, want := range map[string]string{"team-a": `who="a"`, "team-b": `who="b"`} {
		ctx := auth.WithTenant(context.Background(), tenant)
		q, err := r.Engine().NewInstantQuery(ctx, r.Queryable(), nil, `vigil_tenant_test`, time.UnixMilli(now))
		if err != nil {
			t.Fatal(err)
		}
		res := q.Exec(ctx)
		if res.Err != nil {
			t.Fatalf("%s: %v", tenant, res.Err)
		}
		if got := res.String(); !strings.Contains(got, want) || strings.Count(got, "=>") != 1 {
			t.Errorf("%s reads %s; want its own series (%s) alone", tenant, got, want)
		}
	}
}
