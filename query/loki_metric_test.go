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
	"github.com/vigilhq/vigil/internal/model"
)

func TestMetricAPIEmbedded(t *testing.T) { testMetricAPI(t, newTestAPI(t)) }

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
	t.Cleanup(func() { deleteESIndices(t, url, prefix) })
	if err := s.Write(ctx, testRecords()); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	testMetricAPI(t, serveAPI(t, s))
}

// deleteESIndices removes the indices and the template of a test prefix.
func deleteESIndices(t *testing.T, url, prefix string) {
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
	// All twelve took values, 0…110 ms: the median is between 50 and 60.
	instant(`quantile_over_time(0.5, {service="api"} | json took | unwrap duration(took) [2m]) by (service)`, 119, `{service="api"} 0.055`)
	// Window (29 s, 89 s]: seq 3…8; errors are 5 and 8.
	instant(`max_over_time({service="api"} | json seq | unwrap seq [1m] offset 30s) by (level)`, 119, `{level="error"} 8`, `{level="info"} 7`)
	instant(`sum by (level) (count_over_time({service="api"} | json | __error__="" [2m])) > bool 4`, 119, `{level="error"} 0`, `{level="info"} 1`)
	instant(`sum by (level) (count_over_time({host="h1"}[2m])) or vector(0)`, 119,
		`{level="error"} 4`, `{level="info"} 9`, `{level="warn"} 1`, `{} 0`)
	instant(`sum(count_over_time({service="api"} |= "nothing" [2m])) or vector(0)`, 119, `{} 0`)

	// A range query: six lines in each minute, per second.
	code, body, res := call("/loki/api/v1/query_range", "query", `sum(count_over_time({service="api"}[1m])) / 60`,
		"start", at(59), "end", at(119), "step", "60")
	if code != 200 || len(res) != 1 || len(res[0].Values) != 2 || num(res[0].Values[0][1]) != 0.1 || num(res[0].Values[1][1]) != 0.1 {
		t.Errorf("sum(count_over_time)/60: got %d %s; want 0.1 at both steps", code, body)
	}

	bad := func(q, want string) {
		t.Helper()
		code, body, _ := call("/loki/api/v1/query", "query", q, "time", at(119))
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("%s: got %d %q; want 400 with %q", q, code, body, want)
		}
	}
	bad(`sum_over_time({service="api"} | json msg | unwrap msg [2m])`, `pipeline error: 'SampleExtractionErr'`)
	bad(`count_over_time({service="db"} | json [2m])`, `pipeline error: 'JSONParserErr'`)
	bad(`sum_over_time({service="api"}[1m])`, "invalid aggregation sum_over_time without unwrap")
	bad(`count_over_time({service="api"} | json | unwrap seq [1m])`, "invalid aggregation count_over_time with unwrap")
	bad(`count_over_time({service="api"}[1m]) by (level)`, "grouping not allowed for count_over_time aggregation")
}
