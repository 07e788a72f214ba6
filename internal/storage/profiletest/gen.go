// Package profiletest is the behaviour every profile store shares, run by
// the tests of each (internal/profilestore, internal/esprofilestore)
// against a store of its own, and the synthetic profiles they write.
package profiletest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
)

// Program is a synthetic Go service: functions in packages, call sites as
// locations in one binary mapping, and a pool of stacks its CPU time is
// spent in. Profiles of it share most stacks, as the 10-second CPU profiles
// of one service do; the workload drifts slowly so that new stacks keep
// appearing.
type Program struct {
	mapping *profile.Mapping
	funcs   []*profile.Function
	sites   [][]*profile.Location // call sites of each function
	stacks  [][]*profile.Location // leaf first
}

func NewProgram(seed uint64, nfuncs, nstacks int) *Program {
	r := rand.New(rand.NewPCG(seed, 1)) // #nosec G404 -- seeded test data, meant to be reproducible
	pg := &Program{mapping: &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x1400000, File: "/usr/local/bin/checkout", BuildID: "3c0d6b3e9f1a2b4c", HasFunctions: true, HasFilenames: true, HasLineNumbers: true}}
	pkgs := []string{"runtime", "net/http", "encoding/json", "database/sql", "github.com/acme/checkout/internal/cart",
		"github.com/acme/checkout/internal/pricing", "github.com/acme/checkout/internal/store", "google.golang.org/grpc",
		"github.com/jackc/pgx/v5/pgconn", "compress/flate", "crypto/tls", "sync", "strings", "reflect", "sort", "bufio"}
	var locID uint64
	addr := uint64(0x401000)
	for i := 0; i < nfuncs; i++ {
		pkg := pkgs[r.IntN(len(pkgs))]
		name := fmt.Sprintf("%s.(*T%d).Method%d", pkg, r.IntN(40), i)
		f := &profile.Function{ID: uint64(i + 1), Name: name, SystemName: name, Filename: fmt.Sprintf("/src/%s/file%d.go", pkg, i%23), StartLine: int64(10 + r.IntN(900))}
		pg.funcs = append(pg.funcs, f)
		var sites []*profile.Location
		for k := 0; k < 2+r.IntN(5); k++ {
			locID++
			addr += uint64(16 + r.IntN(200))
			sites = append(sites, &profile.Location{ID: locID, Mapping: pg.mapping, Address: addr, Line: []profile.Line{{Function: f, Line: f.StartLine + int64(1+r.IntN(60))}}})
		}
		pg.sites = append(pg.sites, sites)
	}
	// A call graph: every function calls a few others.
	callees := make([][]int, nfuncs)
	for i := range callees {
		for k := 0; k < 2+r.IntN(5); k++ {
			callees[i] = append(callees[i], r.IntN(nfuncs))
		}
	}
	roots := []int{0, 1, 2, 3}
	for len(pg.stacks) < nstacks {
		depth := 6 + r.IntN(30)
		fn := roots[r.IntN(len(roots))]
		var st []*profile.Location
		for d := 0; d < depth; d++ {
			sites := pg.sites[fn]
			st = append(st, sites[r.IntN(len(sites))])
			fn = callees[fn][r.IntN(len(callees[fn]))]
		}
		for i, j := 0, len(st)-1; i < j; i, j = i+1, j-1 {
			st[i], st[j] = st[j], st[i]
		}
		pg.stacks = append(pg.stacks, st)
	}
	return pg
}

// CPUProfile returns the i-th 10-second CPU profile (100 Hz) starting at
// start, gzipped as the Go runtime writes it; spans labels some samples
// with a span_id.
func (pg *Program) CPUProfile(i int, start int64, spans bool) []byte {
	// #nosec G404 -- seeded test data, meant to be reproducible
	r := rand.New(rand.NewPCG(uint64(i), 7))
	const period = 10_000_000 // ns
	n := 600 + r.IntN(800)    // samples of 10 ms
	drift := i / 30 % (len(pg.stacks) / 4)
	zipf := rand.NewZipf(r, 1.2, 4, uint64(len(pg.stacks)-1-drift))
	type key struct {
		stack int
		span  string
	}
	counts := map[key]int64{}
	for k := 0; k < n; k++ {
		kk := key{stack: int(zipf.Uint64()) + drift}
		if spans && r.IntN(3) == 0 {
			kk.span = fmt.Sprintf("%016x", r.IntN(8))
		}
		counts[kk]++
	}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        period,
		TimeNanos:     start,
		DurationNanos: 10e9,
		Mapping:       []*profile.Mapping{pg.mapping},
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].stack != keys[b].stack {
			return keys[a].stack < keys[b].stack
		}
		return keys[a].span < keys[b].span
	})
	locs := map[*profile.Location]bool{}
	for _, k := range keys {
		c := counts[k]
		s := &profile.Sample{Location: pg.stacks[k.stack], Value: []int64{c, c * period}}
		if k.span != "" {
			s.Label = map[string][]string{"span_id": {k.span}}
		}
		p.Sample = append(p.Sample, s)
		for _, l := range s.Location {
			locs[l] = true
		}
	}
	fns := map[*profile.Function]bool{}
	for l := range locs {
		p.Location = append(p.Location, l)
		fns[l.Line[0].Function] = true
	}
	sort.Slice(p.Location, func(a, b int) bool { return p.Location[a].ID < p.Location[b].ID })
	for f := range fns {
		p.Function = append(p.Function, f)
	}
	sort.Slice(p.Function, func(a, b int) bool { return p.Function[a].ID < p.Function[b].ID })
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// SampleKeys describes the samples of p as sorted strings: stack (function,
// line, address per frame), labels and values; two profiles with the same
// samples have the same keys whatever their ids and order.
func SampleKeys(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Sample {
		out = append(out, StackKey(s)+" "+labelKey(s)+" "+fmt.Sprint(s.Value))
	}
	sort.Strings(out)
	return out
}

func StackKey(s *profile.Sample) string {
	var b strings.Builder
	for _, l := range s.Location {
		fmt.Fprintf(&b, "%x", l.Address)
		for _, ln := range l.Line {
			name := ""
			if ln.Function != nil {
				name = ln.Function.Name + "@" + ln.Function.Filename
			}
			fmt.Fprintf(&b, "/%s:%d", name, ln.Line)
		}
		b.WriteByte(';')
	}
	return b.String()
}

func labelKey(s *profile.Sample) string {
	var parts []string
	for k, vs := range s.Label {
		parts = append(parts, fmt.Sprintf("%s=%v", k, vs))
	}
	for k, vs := range s.NumLabel {
		parts = append(parts, fmt.Sprintf("%s#%v%v", k, vs, s.NumUnit[k]))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Totals returns the sum of each sample type's values.
func Totals(p *profile.Profile) []int64 {
	t := make([]int64, len(p.SampleType))
	for _, s := range p.Sample {
		for i, v := range s.Value {
			t[i] += v
		}
	}
	return t
}

// StackTotals adds p's values up by stack (labels ignored).
func StackTotals(p *profile.Profile) map[string][]int64 {
	m := map[string][]int64{}
	for _, s := range p.Sample {
		k := StackKey(s)
		v := m[k]
		if v == nil {
			v = make([]int64, len(s.Value))
			m[k] = v
		}
		for i, x := range s.Value {
			v[i] += x
		}
	}
	return m
}

func MustParse(t testing.TB, b []byte) *profile.Profile {
	t.Helper()
	p, err := profile.ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func Labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Series360 returns one hour of 10-second CPU profiles of one service.
func Series360(pg *Program, n int, start int64, spans bool) []model.Profile {
	ps := make([]model.Profile, n)
	for i := range ps {
		ts := start + int64(i)*10e9
		ps[i] = model.NewProfile("cpu", Labels("service", "checkout", "job", "checkout", "instance", "10.0.0.7:8080", "env", "prod", "grade", "1"), ts, 10e9, pg.CPUProfile(i, ts, spans))
	}
	return ps
}
