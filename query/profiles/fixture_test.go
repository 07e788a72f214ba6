package profiles

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/profilestore"
	"github.com/vigilhq/vigil/internal/storage"
)

// t0 is the start of the fixture's hour: 2026-03-02T10:00:00Z.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// The synthetic service's stacks, leaf first, and the CPU each takes per
// profile: checkout spends most of its time in pricing.Compute.
var cpuStacks = []struct {
	stack []string
	nanos int64
	span  string
}{
	{[]string{"pricing.Compute", "cart.Total", "http.Handler", "main.main"}, 70e6, "00f067aa0ba902b7"},
	{[]string{"json.Marshal", "http.Handler", "main.main"}, 20e6, "5a4fe264a9c987fe"},
	{[]string{"runtime.gcBgMarkWorker"}, 10e6, ""},
}

// cpuProfile builds a 10-second CPU profile of the synthetic service,
// every value multiplied by k.
func cpuProfile(k int64, at time.Time) []byte {
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x800000, File: "/bin/checkout", HasFunctions: true}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10e6,
		TimeNanos:     at.UnixNano(),
		DurationNanos: 10e9,
		Mapping:       []*profile.Mapping{m},
	}
	funcs := map[string]*profile.Location{}
	for _, st := range cpuStacks {
		var locs []*profile.Location
		for _, fn := range st.stack {
			loc, ok := funcs[fn]
			if !ok {
				f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: fn, SystemName: fn, Filename: "/src/" + fn + ".go"}
				p.Function = append(p.Function, f)
				loc = &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: m, Address: 0x401000 + uint64(len(p.Location))*16, Line: []profile.Line{{Function: f, Line: 42}}}
				p.Location = append(p.Location, loc)
				funcs[fn] = loc
			}
			locs = append(locs, loc)
		}
		s := &profile.Sample{Location: locs, Value: []int64{k * st.nanos / 10e6, k * st.nanos}}
		if st.span != "" {
			s.Label = map[string][]string{"span_id": {st.span}}
		}
		p.Sample = append(p.Sample, s)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// heapProfile records the Go runtime's own heap profile.
func heapProfile(t testing.TB) []byte {
	keep := make([][]byte, 0, 64)
	for i := 0; i < 64; i++ {
		keep = append(keep, make([]byte, 64<<10))
	}
	runtime.GC()
	var b bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&b, 0); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(keep)
	return b.Bytes()
}

// fixture is a real embedded profile store holding, over t0's hour, six
// CPU profiles of checkout (k = 1…6, every 10 minutes), three of cart
// (k = 1 each, on instance b) and one real heap profile of checkout.
type fixture struct {
	store *profilestore.Store
	api   *API
	reg   *prometheus.Registry
	srv   *httptest.Server
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := profilestore.Open(profilestore.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var ps []model.Profile
	for k := int64(1); k <= 6; k++ {
		at := t0.Add(time.Duration(k-1) * 10 * time.Minute)
		ps = append(ps, model.NewProfile(model.ProfileCPU, map[string]string{"service": "checkout", "instance": "a:8080", "job": "checkout", "env": "prod"},
			at.UnixNano(), 10e9, cpuProfile(k, at)))
	}
	for k := 0; k < 3; k++ {
		at := t0.Add(time.Duration(k) * 15 * time.Minute)
		ps = append(ps, model.NewProfile(model.ProfileCPU, map[string]string{"service": "cart", "instance": "b:8080", "job": "cart", "env": "prod"},
			at.UnixNano(), 10e9, cpuProfile(1, at)))
	}
	ps = append(ps, model.NewProfile(model.ProfileHeap, map[string]string{"service": "checkout", "instance": "a:8080", "job": "checkout", "env": "prod"},
		t0.Add(5*time.Minute).UnixNano(), 0, heapProfile(t)))
	if err := st.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a := New(Options{Registerer: reg, Now: func() time.Time { return t0.Add(time.Hour) }}, st)
	mux := http.NewServeMux()
	a.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{store: st, api: a, reg: reg, srv: srv}
}

// counter reads a counter of the API's registry.
func (f *fixture) counter(t testing.TB, name, api string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "api" && l.GetValue() == api {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func selectorAll() storage.ProfileSelector { return storage.ProfileSelector{} }
