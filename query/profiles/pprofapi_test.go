package profiles

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func get(t *testing.T, f *fixture, path string, params url.Values) (int, []byte) {
	t.Helper()
	u := f.srv.URL + path
	if params != nil {
		u += "?" + params.Encode()
	}
	code, b, _ := getPage(t, f, u)
	return code, []byte(b)
}

func getProfile(t *testing.T, f *fixture, path string, params url.Values) *profile.Profile {
	t.Helper()
	code, b := get(t, f, path, params)
	if code != 200 {
		t.Fatalf("GET %s %v: %d %s", path, params, code, b)
	}
	p, err := profile.ParseData(b)
	if err != nil {
		t.Fatalf("GET %s: the download does not parse: %v", path, err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("GET %s: invalid profile: %v", path, err)
	}
	return p
}

func total(p *profile.Profile, sampleType string) int64 {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == sampleType {
			idx = i
		}
	}
	if idx < 0 {
		return 0
	}
	var n int64
	for _, s := range p.Sample {
		n += s.Value[idx]
	}
	return n
}

func hour() url.Values {
	return url.Values{"start": {t0.Format(time.RFC3339)}, "end": {t0.Add(time.Hour).Format(time.RFC3339)}}
}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// The merge of a range adds up every profile in it: its totals are the sum
// of the stored profiles' totals, whichever way the range is written.
func TestMergeTotalsAreTheSumOfTheInputs(t *testing.T) {
	f := newFixture(t)
	p := getProfile(t, f, APIPrefix+"merge", with(hour(), "query", `cpu{service="checkout"}`))
	const want int64 = (1 + 2 + 3 + 4 + 5 + 6) * 100e6
	if got := total(p, "cpu"); got != want {
		t.Fatalf("merged cpu total %d, want %d", got, want)
	}
	unix := url.Values{"query": {`cpu{service="checkout"}`}, "start": {"1772445600"}, "end": {"1772449200"}}
	if got := total(getProfile(t, f, APIPrefix+"merge", unix), "cpu"); got != want {
		t.Fatalf("merge over Unix seconds: cpu total %d, want %d", got, want)
	}
	// Half the range: the first three profiles.
	half := with(hour(), "query", `cpu{service="checkout"}`, "end", t0.Add(25*time.Minute).Format(time.RFC3339))
	if got := total(getProfile(t, f, APIPrefix+"merge", half), "cpu"); got != 600e6 {
		t.Fatalf("first 25 minutes: cpu total %d, want %d", got, int64(600e6))
	}
	// Every CPU profile of the hour, both services: + 3 × 100 ms of cart.
	all := getProfile(t, f, APIPrefix+"merge", with(hour(), "query", `cpu`))
	if got := total(all, "cpu"); got != want+300e6 {
		t.Fatalf("all cpu: total %d, want %d", got, want+300e6)
	}
	// A span id keeps only its samples.
	span := with(hour(), "query", `cpu{service="checkout"}`, "span_id", "00f067aa0ba902b7")
	if got := total(getProfile(t, f, APIPrefix+"merge", span), "cpu"); got != 21*70e6 {
		t.Fatalf("span 00f067aa0ba902b7: cpu total %d, want %d", got, int64(21*70e6))
	}
}

func TestDiff(t *testing.T) {
	f := newFixture(t)
	// Identical selections cancel out.
	same := with(hour(), "query", `cpu{service="checkout"}`, "base_start", t0.Format(time.RFC3339), "base_end", t0.Add(time.Hour).Format(time.RFC3339))
	p := getProfile(t, f, APIPrefix+"diff", same)
	if len(p.Sample) != 0 {
		t.Fatalf("diff of identical ranges has %d samples, want none", len(p.Sample))
	}
	// Last half hour against the first: (4+5+6) − (1+2+3) = 9 × 100 ms.
	half := url.Values{
		"query": {`cpu{service="checkout"}`},
		"start": {t0.Add(30 * time.Minute).Format(time.RFC3339)}, "end": {t0.Add(time.Hour).Format(time.RFC3339)},
		"base_start": {t0.Format(time.RFC3339)}, "base_end": {t0.Add(30 * time.Minute).Format(time.RFC3339)},
	}
	p = getProfile(t, f, APIPrefix+"diff", half)
	if got := total(p, "cpu"); got != 900e6 {
		t.Fatalf("diff: cpu total %d, want %d", got, int64(900e6))
	}
	// Base against nothing: every value negative.
	neg := with(half, "start", t0.Add(-2*time.Hour).Format(time.RFC3339), "end", t0.Add(-time.Hour).Format(time.RFC3339))
	p = getProfile(t, f, APIPrefix+"diff", neg)
	if got := total(p, "cpu"); got != -600e6 {
		t.Fatalf("diff against an empty range: cpu total %d, want %d", got, int64(-600e6))
	}
}

func TestTop(t *testing.T) {
	f := newFixture(t)
	code, b := get(t, f, APIPrefix+"top", with(hour(), "query", `cpu{service="checkout"}`, "sample_type", "cpu", "limit", "2"))
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var resp struct {
		Data Top `json:"data"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	top := resp.Data
	if top.SampleType != "cpu" || top.Unit != "nanoseconds" || top.Total != 2100e6 || len(top.Functions) != 2 {
		t.Fatalf("top = %+v", top)
	}
	if fn := top.Functions[0]; fn.Name != "pricing.Compute" || fn.Flat != 21*70e6 || fn.Cum != 21*70e6 {
		t.Fatalf("top function = %+v, want pricing.Compute with 1470 ms", fn)
	}
	if fn := top.Functions[1]; fn.Name != "json.Marshal" || fn.Flat != 21*20e6 {
		t.Fatalf("second function = %+v", fn)
	}
}

func TestMetadataEndpoints(t *testing.T) {
	f := newFixture(t)
	decode := func(path string, params url.Values, into any) {
		t.Helper()
		code, b := get(t, f, path, params)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		env := struct {
			Status string `json:"status"`
			Data   any    `json:"data"`
		}{Data: into}
		if err := json.Unmarshal(b, &env); err != nil || env.Status != "success" {
			t.Fatalf("GET %s: %s (%v)", path, b, err)
		}
	}
	var types []jsonType
	decode(APIPrefix+"types", hour(), &types)
	if len(types) != 2 || types[0].Type != "cpu" || types[1].Type != "heap" || len(types[0].SampleTypes) != 2 || types[0].PeriodType.Unit != "nanoseconds" {
		t.Fatalf("types = %+v", types)
	}
	var names []string
	decode(APIPrefix+"labels", with(hour(), "query", `cpu`), &names)
	if strings.Join(names, ",") != "env,instance,job,service" {
		t.Fatalf("label names = %v", names)
	}
	var vals []string
	decode(APIPrefix+"label/service/values", with(hour(), "query", `{env="prod"}`), &vals)
	if strings.Join(vals, ",") != "cart,checkout" {
		t.Fatalf("services = %v", vals)
	}
	var series []jsonSeries
	decode(APIPrefix+"series", with(hour(), "query", `{service="checkout"}`), &series)
	if len(series) != 2 || series[0].Type != "cpu" || series[1].Type != "heap" || series[0].Labels["instance"] != "a:8080" {
		t.Fatalf("series = %+v", series)
	}
	var list []jsonProfile
	decode(APIPrefix+"list", with(hour(), "query", `cpu{service="checkout"}`), &list)
	if len(list) != 6 || list[5].Totals[1] != 600e6 || list[0].Duration != 10 {
		t.Fatalf("list = %+v", list)
	}
	// One raw profile by id: the fourth checkout profile, k = 4.
	p := getProfile(t, f, APIPrefix+"profile/"+list[3].ID, nil)
	if got := total(p, "cpu"); got != 400e6 {
		t.Fatalf("profile %s: cpu total %d, want %d", list[3].ID, got, int64(400e6))
	}
	// The heap profile, recorded from the runtime, opens too.
	var heap []jsonProfile
	decode(APIPrefix+"list", with(hour(), "query", `heap`), &heap)
	if len(heap) != 1 {
		t.Fatalf("heap list = %+v", heap)
	}
	hp := getProfile(t, f, APIPrefix+"profile/"+heap[0].ID, nil)
	if total(hp, "inuse_space") <= 0 {
		t.Fatal("heap profile has no in-use space")
	}
}

func TestBadRequestsAre400NamingTheProblem(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		path   string
		params url.Values
		want   string
		code   int
	}{
		{APIPrefix + "merge", url.Values{"query": {`cpu{job=`}}, "query", 400},
		{APIPrefix + "merge", url.Values{"query": {`cpu{job=~"("}`}}, "regular expression", 400},
		{APIPrefix + "merge", url.Values{"query": {`cpu`}, "start": {"yesterday"}}, "start", 400},
		{APIPrefix + "merge", url.Values{"query": {`cpu`}, "start": {"1772449200"}, "end": {"1772445600"}}, "before", 400},
		{APIPrefix + "merge", url.Values{"query": {`cpu`}, "span_id": {"xyz"}}, "span_id", 400},
		{APIPrefix + "diff", url.Values{"query": {`cpu`}, "base_query": {`{`}}, "base_query", 400},
		{APIPrefix + "top", url.Values{"query": {`cpu`}, "limit": {"-1"}}, "limit", 400},
		{APIPrefix + "top", with(hour(), "query", `cpu`, "sample_type", "wall"), "sample type", 400},
		{APIPrefix + "merge", with(hour(), "query", `{service="checkout"}`), "types cpu, heap", 400},
		{APIPrefix + "profile/zz", nil, "profile id", 400},
		{APIPrefix + "profile/00000000000000000000000000000000", nil, "not found", 404},
	} {
		code, b := get(t, f, c.path, c.params)
		if code != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("GET %s %v: %d %s, want %d naming %q", c.path, c.params, code, b, c.code, c.want)
		}
	}
	if got := f.counter(t, "vigil_profile_query_bad_requests_total", "pprof"); got != 10 {
		t.Fatalf("bad requests counted: %v, want 10", got)
	}
}

// go tool pprof reads a download as it comes.
func TestGoToolPprofReadsTheMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go tool pprof")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go binary")
	}
	f := newFixture(t)
	code, b := get(t, f, APIPrefix+"merge", with(hour(), "query", `cpu{service="checkout"}`))
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	file := filepath.Join(t.TempDir(), "merge.pb.gz")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gobin, "tool", "pprof", "-top", "-sample_index=cpu", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	var first string
	for i, l := range lines {
		if strings.Contains(l, "flat%") && i+1 < len(lines) {
			first = lines[i+1]
			break
		}
	}
	if !strings.Contains(first, "pricing.Compute") || !strings.Contains(string(out), "Total samples = 2100ms") {
		t.Fatalf("go tool pprof -top:\n%s", out)
	}
}
