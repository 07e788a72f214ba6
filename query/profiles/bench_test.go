package profiles

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/profilestore"
)

// benchHour stores one hour of 10-second CPU profiles (360) of a service
// with 3,000 functions and 2,000 distinct stacks 10 to 40 frames deep, each
// profile sampling 600 of them.
func benchHour(b *testing.B) *httptest.Server {
	b.Helper()
	st, err := profilestore.Open(profilestore.DefaultOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	r := rand.New(rand.NewPCG(1, 2))
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x4000000, File: "/bin/svc", HasFunctions: true}
	var locs []*profile.Location
	var funcs []*profile.Function
	for i := 0; i < 3000; i++ {
		f := &profile.Function{ID: uint64(i + 1), Name: fmt.Sprintf("pkg%d.(*T%d).Method%d", i%37, i%11, i), Filename: fmt.Sprintf("/src/pkg%d/f.go", i%37)}
		funcs = append(funcs, f)
		locs = append(locs, &profile.Location{ID: uint64(i + 1), Mapping: m, Address: 0x401000 + uint64(i)*64, Line: []profile.Line{{Function: f, Line: int64(10 + i%300)}}})
	}
	stacks := make([][]*profile.Location, 2000)
	for i := range stacks {
		depth := 10 + r.IntN(31)
		for d := 0; d < depth; d++ {
			stacks[i] = append(stacks[i], locs[r.IntN(len(locs))])
		}
	}
	var ps []model.Profile
	for k := 0; k < 360; k++ {
		at := t0.Add(time.Duration(k) * 10 * time.Second)
		p := &profile.Profile{
			SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
			PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10e6,
			TimeNanos: at.UnixNano(), DurationNanos: 10e9, Mapping: []*profile.Mapping{m}, Location: locs, Function: funcs,
		}
		for _, i := range r.Perm(len(stacks))[:600] {
			n := int64(1 + r.IntN(20))
			p.Sample = append(p.Sample, &profile.Sample{Location: stacks[i], Value: []int64{n, n * 10e6}})
		}
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			b.Fatal(err)
		}
		ps = append(ps, model.NewProfile("cpu", map[string]string{"service": "svc"}, at.UnixNano(), 10e9, buf.Bytes()))
	}
	if err := st.Write(context.Background(), ps); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	New(Options{}, st).RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkHourFlameGraph is Grafana's flame graph of one hour of CPU
// profiles: merge, build the tree by function, encode the levels, answer
// protobuf over connect.
func BenchmarkHourFlameGraph(b *testing.B) {
	srv := benchHour(b)
	c := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	maxNodes := int64(16384)
	req := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuID, LabelSelector: `{service_name="svc"}`, Start: t0.UnixMilli(), End: t0.Add(time.Hour).UnixMilli(), MaxNodes: &maxNodes}
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(req))
		if err != nil || resp.Msg.Flamegraph.Total == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkHourPprofMerge is the pprof API's merge of the same hour,
// gzipped.
func BenchmarkHourPprofMerge(b *testing.B) {
	srv := benchHour(b)
	u := srv.URL + APIPrefix + "merge?query=cpu&start=" + t0.Format(time.RFC3339) + "&end=" + t0.Add(time.Hour).Format(time.RFC3339)
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(u)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		if _, err := profile.Parse(resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
