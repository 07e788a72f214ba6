package profiletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Store is a profile store under test. A store whose writes become
// visible to reads only after a refresh (Elasticsearch) also has
// Refresh(ctx) error; the tests call it after each write.
type Store interface {
	storage.ProfileWriter
	storage.ProfileReader
}

// T0 is 2026-12-03 10:00 UTC.
var T0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC).UnixNano()

// Run runs every shared test, each on a new empty store from open.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"WriteReadBack", testWriteReadBack},
		{"MergeTotals", testMergeTotals},
		{"SpanRestriction", testSpanRestriction},
		{"Selectors", testSelectors},
		{"Totals", testTotals},
		{"DuplicatesAndRejects", testDuplicatesAndRejects},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Write writes ps and makes them visible to reads.
func Write(t testing.TB, s storage.ProfileWriter, ps ...model.Profile) {
	t.Helper()
	if err := s.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	Refresh(t, s)
}

// Refresh makes what s stored visible to reads, if s needs that.
func Refresh(t testing.TB, s any) {
	t.Helper()
	if r, ok := s.(interface{ Refresh(context.Context) error }); ok {
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// Matcher returns a label matcher.
func Matcher(t testing.TB, name string, op model.MatchOp, v string) *model.LabelMatcher {
	t.Helper()
	m, err := model.NewLabelMatcher(name, op, v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// RealProfiles records a real CPU profile (with pprof labels on some
// samples) and a real heap profile of this test process.
func RealProfiles(t testing.TB) (cpu, heap []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("cannot profile: %v", err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	var sink []byte
	for time.Now().Before(deadline) {
		pprof.Do(context.Background(), pprof.Labels("span_id", "00f067aa0ba902b7"), func(context.Context) {
			for i := 0; i < 2000; i++ {
				sink = fmt.Appendf(sink[:0], "%d %s", i, time.Now())
			}
		})
		var b bytes.Buffer
		for i := 0; i < 200; i++ {
			fmt.Fprintf(&b, "%x", i*i)
		}
	}
	pprof.StopCPUProfile()
	cpu = buf.Bytes()
	var hb bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&hb, 0); err != nil {
		t.Fatal(err)
	}
	return cpu, hb.Bytes()
}

// ReadBackProfiles returns real and synthetic profiles of two types for
// CheckReadBack.
func ReadBackProfiles(t testing.TB) []model.Profile {
	cpu, heap := RealProfiles(t)
	pg := NewProgram(1, 300, 500)
	return []model.Profile{
		model.NewProfile("cpu", Labels("service", "real"), T0, 300e6, cpu),
		model.NewProfile("heap", Labels("service", "real"), T0+1, 0, heap),
		model.NewProfile("cpu", Labels("service", "checkout"), T0+2, 10e9, pg.CPUProfile(0, T0+2, true)),
		model.NewProfile("cpu", Labels("service", "checkout"), T0+3, 10e9, pg.CPUProfile(1, T0+3, false)),
	}
}

// CheckReadBack checks that each of ps reads back from r by its id with
// the samples, header and metadata it was written with, and that an
// unknown id is not found.
func CheckReadBack(t testing.TB, r storage.ProfileReader, ps []model.Profile) {
	t.Helper()
	for _, in := range ps {
		got, meta, err := r.Profile(context.Background(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		// What a client sees: the profile written out and parsed again.
		var buf bytes.Buffer
		if err := got.Write(&buf); err != nil {
			t.Fatal(err)
		}
		back := MustParse(t, buf.Bytes())
		want := MustParse(t, in.Pprof)
		if g, w := SampleKeys(back), SampleKeys(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("%s %s: samples differ: got %d samples, want %d", in.Type, in.Labels, len(g), len(w))
		}
		if fmt.Sprint(valueTypes(back.SampleType)) != fmt.Sprint(valueTypes(want.SampleType)) || back.Period != want.Period || back.TimeNanos != want.TimeNanos || back.DurationNanos != want.DurationNanos {
			t.Fatalf("%s: header differs: got %v %d %d %d, want %v %d %d %d", in.Type, back.SampleType, back.Period, back.TimeNanos, back.DurationNanos, want.SampleType, want.Period, want.TimeNanos, want.DurationNanos)
		}
		if meta.ID != in.ID || meta.Type != in.Type || !reflect.DeepEqual(meta.Labels, in.Labels) || !reflect.DeepEqual(meta.Totals, Totals(want)) {
			t.Fatalf("meta: got %+v, want id %s type %s labels %v totals %v", meta, in.ID, in.Type, in.Labels, Totals(want))
		}
	}
	_, _, err := r.Profile(context.Background(), model.RecordID{1})
	if !errors.Is(err, storage.ErrProfileNotFound) {
		t.Fatalf("unknown id: got %v, want ErrProfileNotFound", err)
	}
}

func testWriteReadBack(t *testing.T, s Store) {
	ps := ReadBackProfiles(t)
	Write(t, s, ps...)
	CheckReadBack(t, s, ps)
}

// MidnightSeries returns 24 10-second CPU profiles of one series from
// 23:58 UTC, crossing midnight: two days, two partitions or indices.
func MidnightSeries() []model.Profile {
	start := time.Date(2026, 12, 3, 23, 58, 0, 0, time.UTC).UnixNano()
	return Series360(NewProgram(3, 300, 500), 24, start, true)
}

func testMergeTotals(t *testing.T, s Store) {
	ps := MidnightSeries()
	start := ps[0].TimeNanos
	Write(t, s, ps[:10]...)
	Write(t, s, ps[10:]...)

	var inputs []*profile.Profile
	for _, p := range ps {
		inputs = append(inputs, MustParse(t, p.Pprof))
	}
	want, err := profile.Merge(inputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		got, err := s.Merge(context.Background(), storage.MergeQuery{
			ProfileSelector:  storage.ProfileSelector{Type: "cpu", Matchers: []*model.LabelMatcher{Matcher(t, "service", model.MatchEqual, "checkout")}},
			KeepSampleLabels: keep,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := got.CheckValid(); err != nil {
			t.Fatal(err)
		}
		if g, w := Totals(got), Totals(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("keep labels %v: totals: got %v, want %v", keep, g, w)
		}
		if g, w := StackTotals(got), StackTotals(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("keep labels %v: per-stack totals differ from profile.Merge's: %d stacks, want %d", keep, len(g), len(w))
		}
		if keep && !reflect.DeepEqual(SampleKeys(got), SampleKeys(want)) {
			t.Fatalf("with labels kept, the samples differ from profile.Merge's")
		}
		if got.TimeNanos != want.TimeNanos || got.DurationNanos != want.DurationNanos || got.Period != want.Period {
			t.Fatalf("header: got %d %d %d, want %d %d %d", got.TimeNanos, got.DurationNanos, got.Period, want.TimeNanos, want.DurationNanos, want.Period)
		}
	}

	// A sub-range: the profiles whose time is in [start+100s, start+200s).
	got, err := s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu", Start: start + 100e9, End: start + 200e9}})
	if err != nil {
		t.Fatal(err)
	}
	var wantT []int64
	for _, p := range inputs[10:20] {
		wantT = addTotals(wantT, Totals(p))
	}
	if g := Totals(got); !reflect.DeepEqual(g, wantT) {
		t.Fatalf("range: totals got %v, want %v", g, wantT)
	}

	// Profile ids restrict the merge to those profiles.
	got, err = s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}, ProfileIDs: []model.RecordID{ps[5].ID, ps[20].ID}})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := Totals(got), addTotals(Totals(inputs[5]), Totals(inputs[20])); !reflect.DeepEqual(g, w) {
		t.Fatalf("profile ids: totals got %v, want %v", g, w)
	}

	// Nothing selected: an empty profile.
	got, err = s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "heap"}})
	if err != nil || len(got.Sample) != 0 {
		t.Fatalf("empty selection: got %d samples, %v; want none", len(got.Sample), err)
	}
}

func valueTypes(vts []*profile.ValueType) []string {
	var out []string
	for _, vt := range vts {
		out = append(out, vt.Type+"/"+vt.Unit)
	}
	return out
}

func addTotals(a, b []int64) []int64 {
	if a == nil {
		a = make([]int64, len(b))
	}
	for i := range b {
		a[i] += b[i]
	}
	return a
}

func testSpanRestriction(t *testing.T, s Store) {
	pg := NewProgram(4, 200, 300)
	ps := Series360(pg, 10, T0, true)
	Write(t, s, ps...)
	Write(t, s, model.NewProfile("cpu", Labels("service", "checkout"), T0, 10e9, pg.CPUProfile(99, T0, false)))
	spans := []string{fmt.Sprintf("%016x", 3), fmt.Sprintf("%016x", 5)}
	want := make([]int64, 2)
	wantStacks := map[string][]int64{}
	for _, p := range ps {
		for _, smp := range MustParse(t, p.Pprof).Sample {
			if sp := smp.Label["span_id"]; len(sp) == 1 && slices.Contains(spans, sp[0]) {
				want = addTotals(want, smp.Value)
				k := StackKey(smp)
				wantStacks[k] = addTotals(wantStacks[k], smp.Value)
			}
		}
	}
	if want[0] == 0 {
		t.Fatal("the generated profiles have no sample of the spans")
	}
	got, err := s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}, SpanIDs: spans})
	if err != nil {
		t.Fatal(err)
	}
	if g := Totals(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("totals: got %v, want %v", g, want)
	}
	if g := StackTotals(got); !reflect.DeepEqual(g, wantStacks) {
		t.Fatalf("per-stack totals differ: %d stacks, want %d", len(g), len(wantStacks))
	}
	got, err = s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}, SpanIDs: []string{"ffffffffffffffff"}})
	if err != nil || len(got.Sample) != 0 {
		t.Fatalf("unknown span: got %d samples, %v; want none", len(got.Sample), err)
	}
}
