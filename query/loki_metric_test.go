package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
)

func TestMetricAPIEmbedded(t *testing.T) {
	s, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Write(context.Background(), metricRecords()); err != nil {
		t.Fatal(err)
	}
	testMetricAPI(t, serveAPI(t, s))
}

// TestMetricAPIElasticsearch runs the same queries over the Elasticsearch
// store.
func TestMetricAPIElasticsearch(t *testing.T) {
	url := estest.URL(t)
	prefix := fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	o := esstore.DefaultOptions()
	o.URLs = []string{url}
	o.IndexPrefix = prefix
	o.Replicas = 0
	o.Retention = 0
	o.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := esstore.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(func() { cleanESPrefix(t, url, prefix) })
	if err := s.Write(ctx, metricRecords()); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	testMetricAPI(t, serveAPI(t, s))
}

// cleanESPrefix removes the indices and the template of a test prefix.
func cleanESPrefix(t *testing.T, url, prefix string) {
	resp, err := http.Get(url + "/_cat/indices/" + prefix + "*?h=index")
	if err != nil {
		t.Logf("cannot list test indices: %v", err)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	del := func(path string) {
		req, _ := http.NewRequest(http.MethodDelete, url+path, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	for _, idx := range strings.Fields(string(b)) {
		del("/" + idx)
	}
	del("/_index_template/" + strings.TrimRight(prefix, "-"))
}

// testMetricAPI checks metric queries through the Loki API over the data
// of testRecords; expected values are worked out from that data.
func testMetricAPI(t *testing.T, srv *httptest.Server) {
	type result struct {
		Metric map[string]string
		Value  [2]any
		Values [][2]any
	}
	call := func(path string, params ...string) (int, string, []result) {
		t.Helper()
		code, body := get(t, srv, path, params...)
		var r struct{ Data struct{ Result []result } }
		if code == 200 {
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
		return code, body, r.Data.Result
	}
	num := func(v any) float64 {
		f, _ := strconv.ParseFloat(v.(string), 64)
		return math.Round(f*1e9) / 1e9
	}
	key := func(m map[string]string) string { return model.LabelsFromMap(m).String() }
	at := func(sec int) string { return strconv.FormatInt(base+int64(sec)*1e9, 10) }
	instant := func(q string, sec int, want ...string) {
		t.Helper()
		code, body, res := call("/loki/api/v1/query", "query", q, "time", at(sec))
		if code != 200 {
			t.Errorf("%s: %d %s", q, code, body)
			return
		}
		var got []string
		for _, r := range res {
			got = append(got, key(r.Metric)+" "+strconv.FormatFloat(num(r.Value[1]), 'g', -1, 64))
		}
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s\ngot\n%s\nwant\n%s", q, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// The data of metricLines; expected values as in TestMetricFunctions.
	// Series of whole streams carry Loki 3's service_name and detected_level.
	h1 := `{detected_level="info", host="h1", level="info", service="api", service_name="api"}`
	h2 := `{detected_level="info", host="h2", level="info", service="api", service_name="api"}`
	instant(`quantile_over_time(0.5, {service="api", host="h1"} | logfmt latency | unwrap latency [1m])`, 60, h1+" 2.5")
	// took: 0.1 + 1 + 0.25 + 2 s on h1; 1m on h2, whose "zzz" is filtered.
	instant(`sum_over_time({service="api"} | logfmt took | unwrap duration(took) | __error__="" [1m])`, 60, h1+" 3.35", h2+" 60")
	instant(`max_over_time({service="api"} | logfmt latency | unwrap latency | __error__="" [1m]) by (service)`, 60, `{service="api"} 10`)
	instant(`rate_counter({service="ctr"} | logfmt | unwrap c [1m])`, 60, `{detected_level="info", host="h3", level="info", service="ctr", service_name="ctr"} 0.625`)
	instant(`count_over_time({service="api"}[1m] offset 30s)`, 60, h1+" 3", h2+" 1")
	instant(`sum by (host) (count_over_time({level=~".+"}[1m])) or vector(0)`, 60, `{host="h1"} 6`, `{host="h2"} 2`, `{host="h3"} 4`, `{} 0`)
	instant(`sum(count_over_time({service="nope"}[1m])) or vector(0)`, 60, `{} 0`)
	instant(`count_over_time({service="api"}[1m]) / on (host) group_left sum by (host) (count_over_time({service=~"api|db"}[1m]))`, 60,
		h1+" 0.666666667", h2+" 1")
	instant(`absent_over_time({service="nope", host="h1"}[1m])`, 60, `{host="h1", service="nope"} 1`)

	// A range query: (0, 30] holds 4 api lines, (30, 60] 2.
	code, body, res := call("/loki/api/v1/query_range", "query", `sum(count_over_time({service="api"}[30s])) * 2`,
		"start", at(30), "end", at(60), "step", "30")
	if code != 200 || len(res) != 1 || len(res[0].Values) != 2 || num(res[0].Values[0][1]) != 8 || num(res[0].Values[1][1]) != 4 {
		t.Errorf("sum(count_over_time)*2: got %d %s; want 8 and 4", code, body)
	}

	bad := func(q, want string) {
		t.Helper()
		code, body, _ := call("/loki/api/v1/query", "query", q, "time", at(60))
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("%s: got %d %q; want 400 with %q", q, code, body, want)
		}
	}
	bad(`sum_over_time({service="api"} | logfmt latency | unwrap latency [1m])`, `pipeline error: 'SampleExtractionErr'`)
	bad(`count_over_time({service="db"} | json [1m])`, `pipeline error: 'JSONParserErr'`)
	bad(`sum_over_time({service="api"}[1m])`, "invalid aggregation sum_over_time without unwrap")
	bad(`count_over_time({service="api"} | logfmt | unwrap latency [1m])`, "invalid aggregation count_over_time with unwrap")
	bad(`count_over_time({service="api"}[1m]) by (level)`, "grouping not allowed for count_over_time aggregation")
	bad(`count_over_time({service=~"api|db"}[1m]) + on (host) count_over_time({service=~"api|db"}[1m])`, "found duplicate series for the match group")
}
