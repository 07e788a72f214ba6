package profiles

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"
)

const cpuID = "cpu:cpu:nanoseconds:cpu:nanoseconds"

// decodeFlameGraph reads Pyroscope's levels as Grafana's data source does:
// a node's start is its offset plus the end of the previous node of its
// level, and it belongs to the first parent, in order, that spans it. It
// returns the self value per name, failing when a node finds no parent.
func decodeFlameGraph(t *testing.T, fg *querierv1.FlameGraph) map[string]int64 {
	t.Helper()
	type node struct{ start, end int64 }
	self := map[string]int64{}
	if len(fg.Levels) == 0 {
		return self
	}
	root := fg.Levels[0].Values
	if len(root) != 4 || root[0] != 0 || fg.Names[root[3]] != "total" || root[1] != fg.Total {
		t.Fatalf("root level %v", root)
	}
	parents := []node{{0, root[1]}}
	for li := 1; li < len(fg.Levels); li++ {
		vals := fg.Levels[li].Values
		if len(vals)%4 != 0 {
			t.Fatalf("level %d has %d values, not a multiple of 4", li, len(vals))
		}
		var next []node
		var offset int64
		pi := 0
		for i := 0; i < len(vals); {
			start := vals[i] + offset
			end := start + vals[i+1]
			if pi < len(parents) && start >= parents[pi].start && end <= parents[pi].end {
				next = append(next, node{start, end})
				self[fg.Names[vals[i+3]]] += vals[i+2]
				offset = end
				i += 4
				continue
			}
			if pi++; pi >= len(parents) {
				t.Fatalf("level %d: node %s [%d,%d) has no parent", li, fg.Names[vals[i+3]], start, end)
			}
		}
		parents = next
	}
	return self
}

func newClients(f *fixture) map[string]querierv1connect.QuerierServiceClient {
	return map[string]querierv1connect.QuerierServiceClient{
		"protobuf": querierv1connect.NewQuerierServiceClient(http.DefaultClient, f.srv.URL),
		"json":     querierv1connect.NewQuerierServiceClient(http.DefaultClient, f.srv.URL, connect.WithProtoJSON()),
	}
}

// Grafana's Pyroscope data source's calls, made as it makes them, answer
// what the pprof merge of the same range answers.
func TestPyroscopeDataSourceCalls(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start, end := t0.UnixMilli(), t0.Add(time.Hour).UnixMilli()
	pprofMerge := getProfile(t, f, APIPrefix+"merge", with(hour(), "query", `cpu{service="checkout"}`))
	pprofTop := topFunctions(pprofMerge, 1, 100)

	for name, c := range newClients(f) {
		t.Run(name, func(t *testing.T) {
			// Health check: profile types over a few seconds of 1970.
			if _, err := c.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: 1000, End: 4000})); err != nil {
				t.Fatalf("health check: %v", err)
			}
			pt, err := c.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, p := range pt.Msg.ProfileTypes {
				ids = append(ids, p.ID)
				if len(strings.Split(p.ID, ":")) != 5 || p.Name+":"+p.SampleType+":"+p.SampleUnit+":"+p.PeriodType+":"+p.PeriodUnit != p.ID {
					t.Errorf("profile type %+v: id does not have its five parts", p)
				}
			}
			if !slices.Contains(ids, cpuID) || !slices.Contains(ids, "cpu:samples:count:cpu:nanoseconds") || !slices.Contains(ids, "heap:inuse_space:bytes:space:bytes") {
				t.Fatalf("profile types = %v", ids)
			}

			ln, err := c.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Matchers: []string{`{}`}, Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"service_name", "instance", "job", "env", "__profile_type__", "__name__"} {
				if !slices.Contains(ln.Msg.Names, want) {
					t.Fatalf("label names %v lack %s", ln.Msg.Names, want)
				}
			}
			if slices.Contains(ln.Msg.Names, "service") {
				t.Fatalf("label names %v: service is service_name in Pyroscope", ln.Msg.Names)
			}
			lv, err := c.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Matchers: []string{`{}`}, Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(lv.Msg.Names, ",") != "cart,checkout" {
				t.Fatalf("service_name values = %v", lv.Msg.Names)
			}
			lv, err = c.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "__profile_type__", Matchers: []string{`{service_name="checkout"}`}, Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(lv.Msg.Names, cpuID) || !slices.Contains(lv.Msg.Names, "heap:alloc_space:bytes:space:bytes") {
				t.Fatalf("__profile_type__ values = %v", lv.Msg.Names)
			}

			// Series: the time series of the range, 10-minute steps.
			limit := int64(10)
			ss, err := c.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
				ProfileTypeID: cpuID, LabelSelector: `{service_name="checkout"}`, Start: start, End: end,
				Step: 600, GroupBy: []string{"service_name"}, Limit: &limit, ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL,
			}))
			if err != nil {
				t.Fatal(err)
			}
			if len(ss.Msg.Series) != 1 || len(ss.Msg.Series[0].Points) != 6 {
				t.Fatalf("series = %v", ss.Msg.Series)
			}
			s := ss.Msg.Series[0]
			if len(s.Labels) != 1 || s.Labels[0].Name != "service_name" || s.Labels[0].Value != "checkout" {
				t.Fatalf("series labels = %v", s.Labels)
			}
			var sum float64
			for i, p := range s.Points {
				sum += p.Value
				if p.Timestamp != t0.Add(time.Duration(i)*10*time.Minute).UnixMilli() {
					t.Fatalf("point %d at %d", i, p.Timestamp)
				}
			}
			if int64(sum) != total(pprofMerge, "cpu") {
				t.Fatalf("series sum %v, pprof merge total %d", sum, total(pprofMerge, "cpu"))
			}
			// An exemplar leads to its profile.
			ex := s.Points[3].Exemplars
			if len(ex) != 1 || ex[0].Value != 400e6 {
				t.Fatalf("exemplars of point 3 = %v", ex)
			}
			//lint:ignore SA1019 Grafana's Pyroscope data source still calls it, so Vigil serves it
			one, err := c.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
				ProfileTypeID: cpuID, LabelSelector: `{}`, Start: start, End: end, ProfileIdSelector: []string{ex[0].ProfileId},
			}))
			if err != nil {
				t.Fatal(err)
			}
			b, err := proto.Marshal(one.Msg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := profile.ParseData(b)
			if err != nil {
				t.Fatalf("SelectMergeProfile answer does not parse as pprof: %v", err)
			}
			if len(p.SampleType) != 1 || total(p, "cpu") != 400e6 {
				t.Fatalf("exemplar's profile: sample types %v, cpu %d", p.SampleType, total(p, "cpu"))
			}

			// The merged flame graph: its totals and self values are the
			// pprof merge's totals and flat values.
			maxNodes := int64(16384)
			fg, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
				ProfileTypeID: cpuID, LabelSelector: `{service_name="checkout"}`, Start: start, End: end, MaxNodes: &maxNodes,
			}))
			if err != nil {
				t.Fatal(err)
			}
			g := fg.Msg.Flamegraph
			if g.Total != pprofTop.Total || g.Names[0] != "total" || g.MaxSelf != 21*70e6 {
				t.Fatalf("flame graph total %d max self %d, pprof total %d", g.Total, g.MaxSelf, pprofTop.Total)
			}
			self := decodeFlameGraph(t, g)
			for _, fn := range pprofTop.Functions {
				if self[fn.Name] != fn.Flat {
					t.Fatalf("flame graph self of %s = %d, pprof flat %d", fn.Name, self[fn.Name], fn.Flat)
				}
			}

			// Traces to profiles: one span's samples.
			//lint:ignore SA1019 Grafana's traces-to-profiles link still calls it, so Vigil serves it
			sp, err := c.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
				ProfileTypeID: cpuID, LabelSelector: `{service_name="checkout"}`, SpanSelector: []string{"00f067aa0ba902b7"}, Start: start, End: end, MaxNodes: &maxNodes,
			}))
			if err != nil {
				t.Fatal(err)
			}
			if sp.Msg.Flamegraph.Total != 21*70e6 || decodeFlameGraph(t, sp.Msg.Flamegraph)["pricing.Compute"] != 21*70e6 {
				t.Fatalf("span profile: total %d", sp.Msg.Flamegraph.Total)
			}

			// Series with the labels asked for, deduplicated.
			se, err := c.Series(ctx, connect.NewRequest(&querierv1.SeriesRequest{Matchers: []string{`{service_name="checkout"}`}, LabelNames: []string{"service_name", "__profile_type__"}, Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			if len(se.Msg.LabelsSet) != 2+heapSampleTypes(t, f) {
				t.Fatalf("series = %v", se.Msg.LabelsSet)
			}

			// Diff: the first half hour (left) against the second (right).
			mid := t0.Add(30 * time.Minute).UnixMilli()
			d, err := c.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{
				Left:  &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuID, LabelSelector: `{service_name="checkout"}`, Start: start, End: mid},
				Right: &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuID, LabelSelector: `{service_name="checkout"}`, Start: mid, End: end},
			}))
			if err != nil {
				t.Fatal(err)
			}
			dg := d.Msg.Flamegraph
			if dg.LeftTicks != 600e6 || dg.RightTicks != 1500e6 || dg.Total != 2100e6 {
				t.Fatalf("diff ticks left %d right %d total %d", dg.LeftTicks, dg.RightTicks, dg.Total)
			}
			for li, l := range dg.Levels {
				if len(l.Values)%7 != 0 {
					t.Fatalf("diff level %d has %d values, not a multiple of 7", li, len(l.Values))
				}
			}

			st, err := c.GetProfileStats(ctx, connect.NewRequest(&typesv1.GetProfileStatsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if !st.Msg.DataIngested || st.Msg.OldestProfileTime != t0.UnixMilli() || st.Msg.NewestProfileTime != t0.Add(50*time.Minute).UnixMilli() {
				t.Fatalf("stats = %v", st.Msg)
			}
		})
	}
}

func heapSampleTypes(t *testing.T, f *fixture) int {
	ts, err := f.store.ProfileTypes(context.Background(), selectorAll())
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range ts {
		if ti.Type == "heap" {
			return len(ti.SampleTypes)
		}
	}
	return 0
}

func TestPyroscopeBadRequests(t *testing.T) {
	f := newFixture(t)
	c := newClients(f)["protobuf"]
	ctx := context.Background()
	for _, req := range []*querierv1.SelectMergeStacktracesRequest{
		{ProfileTypeID: cpuID, LabelSelector: `{service_name="checkout"`},
		{ProfileTypeID: "cpu:cpu", LabelSelector: `{}`},
		{ProfileTypeID: cpuID, LabelSelector: `{}`, Start: 10, End: 5},
		{ProfileTypeID: cpuID, LabelSelector: `{}`, SpanSelector: []string{"nope"}},
		{ProfileTypeID: cpuID, LabelSelector: `{}`, ProfileIdSelector: []string{"nope"}},
	} {
		_, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(req))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%v: %v, want InvalidArgument", req, err)
		}
	}
	if got := f.counter(t, "vigil_profile_query_bad_requests_total", "pyroscope"); got != 5 {
		t.Fatalf("bad requests counted %v, want 5", got)
	}
	// In the connect protocol's JSON, a bad selector is a 400 naming it.
	resp, err := http.Post(f.srv.URL+"/querier.v1.QuerierService/LabelNames", "application/json", strings.NewReader(`{"matchers":["{service_name=}"]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "service_name") || !strings.Contains(string(b), "invalid_argument") {
		t.Fatalf("bad selector over JSON: %d %s", resp.StatusCode, b)
	}
	// And a good one answers JSON.
	resp, err = http.Post(f.srv.URL+"/querier.v1.QuerierService/LabelValues", "application/json", strings.NewReader(`{"name":"service_name","matchers":["{}"]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"checkout"`) {
		t.Fatalf("label values over JSON: %d %s", resp.StatusCode, b)
	}
}

// A flame graph cut to a few nodes keeps its total: the smallest nodes
// are folded into "other" under their parent.
func TestFlameGraphMaxNodes(t *testing.T) {
	f := newFixture(t)
	c := newClients(f)["protobuf"]
	for _, n := range []int64{1, 3, 5, 1 << 20} {
		maxNodes := n
		fg, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuID, LabelSelector: `{service_name="checkout"}`, Start: t0.UnixMilli(), End: t0.Add(time.Hour).UnixMilli(), MaxNodes: &maxNodes,
		}))
		if err != nil {
			t.Fatal(err)
		}
		g := fg.Msg.Flamegraph
		self := decodeFlameGraph(t, g)
		var sum int64
		for _, v := range self {
			sum += v
		}
		if g.Total != 2100e6 || sum != g.Total {
			t.Fatalf("max_nodes %d: total %d, self values add up to %d", n, g.Total, sum)
		}
		if n == 3 && !slices.Contains(g.Names, "other") {
			t.Fatalf("max_nodes 3: names %v lack other", g.Names)
		}
		if n == 1<<20 && slices.Contains(g.Names, "other") {
			t.Fatalf("max_nodes %d: names %v", n, g.Names)
		}
	}
}

// The heatmap counts each profile once, in the cell of its step and total.
func TestSelectHeatmap(t *testing.T) {
	f := newFixture(t)
	c := newClients(f)["json"]
	hm, err := c.SelectHeatmap(context.Background(), connect.NewRequest(&querierv1.SelectHeatmapRequest{
		ProfileTypeID: cpuID, LabelSelector: `{}`, Start: t0.UnixMilli(), End: t0.Add(time.Hour).UnixMilli(), Step: 600,
		GroupBy: []string{"service_name"}, QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_INDIVIDUAL,
		ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(hm.Msg.Series) != 2 || hm.Msg.Series[0].Labels[0].Value != "checkout" {
		t.Fatalf("heatmap series = %v", hm.Msg.Series)
	}
	counts := map[string]int32{}
	for _, s := range hm.Msg.Series {
		for _, sl := range s.Slots {
			if len(sl.YMin) != heatmapBuckets || len(sl.Counts) != heatmapBuckets || sl.YMin[0] != 100e6 {
				t.Fatalf("slot %v", sl)
			}
			for _, n := range sl.Counts {
				counts[s.Labels[0].Value] += n
			}
			if len(sl.Exemplars) == 0 {
				t.Fatalf("slot %v has no exemplar", sl)
			}
		}
	}
	if counts["checkout"] != 6 || counts["cart"] != 3 {
		t.Fatalf("profiles counted %v, want checkout 6 and cart 3", counts)
	}
	// The largest checkout profile, 600 ms, is in the last bucket of the
	// last step.
	last := hm.Msg.Series[0].Slots[len(hm.Msg.Series[0].Slots)-1]
	if last.Timestamp != t0.Add(50*time.Minute).UnixMilli() || last.Counts[heatmapBuckets-1] != 1 || last.Exemplars[0].Value != 600e6 {
		t.Fatalf("last slot %v", last)
	}
}

// A querier call with a body past maxQuerierRequest is refused unread.
func TestQuerierBoundsItsRequests(t *testing.T) {
	f := newFixture(t)
	c := querierv1connect.NewQuerierServiceClient(http.DefaultClient, f.srv.URL)
	_, err := c.LabelNames(context.Background(), connect.NewRequest(&typesv1.LabelNamesRequest{
		Matchers: []string{`{service_name="` + strings.Repeat("a", 2*maxQuerierRequest) + `"}`},
	}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("a %d-byte request: got %v, want resource_exhausted", 2*maxQuerierRequest, err)
	}
	if _, err := c.LabelNames(context.Background(), connect.NewRequest(&typesv1.LabelNamesRequest{})); err != nil {
		t.Fatalf("a small request: %v", err)
	}
}
