package profilestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// t0 is 2026-12-03 10:00 UTC.
var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC).UnixNano()

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(DefaultOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t testing.TB, s *Store, ps ...model.Profile) {
	t.Helper()
	if err := s.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
}

func matcher(t testing.TB, name string, op model.MatchOp, v string) *model.LabelMatcher {
	t.Helper()
	m, err := model.NewLabelMatcher(name, op, v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// realProfiles records a real CPU profile (with pprof labels on some
// samples) and a real heap profile of this test process.
func realProfiles(t testing.TB) (cpu, heap []byte) {
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

func TestWriteReadBack(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	cpu, heap := realProfiles(t)
	pg := newProgram(1, 300, 500)
	ps := []model.Profile{
		model.NewProfile("cpu", labels("service", "real"), t0, 300e6, cpu),
		model.NewProfile("heap", labels("service", "real"), t0+1, 0, heap),
		model.NewProfile("cpu", labels("service", "checkout"), t0+2, 10e9, pg.cpuProfile(0, t0+2, true)),
		model.NewProfile("cpu", labels("service", "checkout"), t0+3, 10e9, pg.cpuProfile(1, t0+3, false)),
	}
	write(t, s, ps...)
	check := func(s *Store) {
		t.Helper()
		for _, in := range ps {
			got, meta, err := s.Profile(context.Background(), in.ID)
			if err != nil {
				t.Fatal(err)
			}
			// What a client sees: the profile written out and parsed again.
			var buf bytes.Buffer
			if err := got.Write(&buf); err != nil {
				t.Fatal(err)
			}
			back := mustParse(t, buf.Bytes())
			want := mustParse(t, in.Pprof)
			if g, w := sampleKeys(back), sampleKeys(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("%s %s: samples differ: got %d samples, want %d", in.Type, in.Labels, len(g), len(w))
			}
			if fmt.Sprint(valueTypes(back.SampleType)) != fmt.Sprint(valueTypes(want.SampleType)) || back.Period != want.Period || back.TimeNanos != want.TimeNanos || back.DurationNanos != want.DurationNanos {
				t.Fatalf("%s: header differs: got %v %d %d %d, want %v %d %d %d", in.Type, back.SampleType, back.Period, back.TimeNanos, back.DurationNanos, want.SampleType, want.Period, want.TimeNanos, want.DurationNanos)
			}
			if meta.ID != in.ID || meta.Type != in.Type || !reflect.DeepEqual(meta.Labels, in.Labels) || !reflect.DeepEqual(meta.Totals, totals(want)) {
				t.Fatalf("meta: got %+v, want id %s type %s labels %v totals %v", meta, in.ID, in.Type, in.Labels, totals(want))
			}
		}
	}
	check(s)
	_, _, err := s.Profile(context.Background(), model.RecordID{1})
	if !errors.Is(err, storage.ErrProfileNotFound) {
		t.Fatalf("unknown id: got %v, want ErrProfileNotFound", err)
	}

	// Reopened, the same; and writing more after reopening extends the
	// dictionaries without disturbing what was there.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	defer s.Close()
	check(s)
	more := model.NewProfile("cpu", labels("service", "checkout"), t0+4, 10e9, newProgram(2, 200, 300).cpuProfile(2, t0+4, true))
	write(t, s, more)
	ps = append(ps, more)
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	check(s)
}

func TestMergeTotals(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	pg := newProgram(3, 300, 500)
	// Crosses midnight: two partitions, whose symbols must become one set.
	start := time.Date(2026, 12, 3, 23, 58, 0, 0, time.UTC).UnixNano()
	ps := series360(pg, 24, start, true)
	write(t, s, ps[:10]...)
	write(t, s, ps[10:]...)
	if st := s.DiskStats(); st.Partitions != 2 || st.Profiles != 24 {
		t.Fatalf("stats: got %+v, want 2 partitions, 24 profiles", st)
	}

	var inputs []*profile.Profile
	for _, p := range ps {
		inputs = append(inputs, mustParse(t, p.Pprof))
	}
	want, err := profile.Merge(inputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		got, err := s.Merge(context.Background(), storage.MergeQuery{
			ProfileSelector:  storage.ProfileSelector{Type: "cpu", Matchers: []*model.LabelMatcher{matcher(t, "service", model.MatchEqual, "checkout")}},
			KeepSampleLabels: keep,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := got.CheckValid(); err != nil {
			t.Fatal(err)
		}
		if g, w := totals(got), totals(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("keep labels %v: totals: got %v, want %v", keep, g, w)
		}
		if g, w := stackTotals(got), stackTotals(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("keep labels %v: per-stack totals differ from profile.Merge's: %d stacks, want %d", keep, len(g), len(w))
		}
		if keep && !reflect.DeepEqual(sampleKeys(got), sampleKeys(want)) {
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
		wantT = addTotals(wantT, totals(p))
	}
	if g := totals(got); !reflect.DeepEqual(g, wantT) {
		t.Fatalf("range: totals got %v, want %v", g, wantT)
	}

	// Profile ids restrict the merge to those profiles.
	got, err = s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}, ProfileIDs: []model.RecordID{ps[5].ID, ps[20].ID}})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := totals(got), addTotals(totals(inputs[5]), totals(inputs[20])); !reflect.DeepEqual(g, w) {
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

func TestSpanRestriction(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	pg := newProgram(4, 200, 300)
	ps := series360(pg, 10, t0, true)
	write(t, s, ps...)
	write(t, s, model.NewProfile("cpu", labels("service", "checkout"), t0, 10e9, pg.cpuProfile(99, t0, false)))
	spans := []string{fmt.Sprintf("%016x", 3), fmt.Sprintf("%016x", 5)}
	want := make([]int64, 2)
	wantStacks := map[string][]int64{}
	for _, p := range ps {
		for _, smp := range mustParse(t, p.Pprof).Sample {
			if sp := smp.Label["span_id"]; len(sp) == 1 && slices.Contains(spans, sp[0]) {
				want = addTotals(want, smp.Value)
				k := stackKey(smp)
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
	if g := totals(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("totals: got %v, want %v", g, want)
	}
	if g := stackTotals(got); !reflect.DeepEqual(g, wantStacks) {
		t.Fatalf("per-stack totals differ: %d stacks, want %d", len(g), len(wantStacks))
	}
	got, err = s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}, SpanIDs: []string{"ffffffffffffffff"}})
	if err != nil || len(got.Sample) != 0 {
		t.Fatalf("unknown span: got %d samples, %v; want none", len(got.Sample), err)
	}
}

func TestSelectors(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	pg := newProgram(5, 100, 100)
	var ps []model.Profile
	for i, ls := range []map[string]string{
		labels("service", "checkout", "job", "checkout", "instance", "10.0.0.7:8080", "env", "prod"),
		labels("service", "checkout", "job", "checkout", "instance", "10.0.0.8:8080", "env", "prod"),
		labels("service", "cart", "job", "cart", "instance", "10.0.0.9:8080", "env", "staging"),
		labels("service", "search", "job", "search", "instance", "10.0.0.10:8080"),
	} {
		ps = append(ps, model.NewProfile("cpu", ls, t0+int64(i), 10e9, pg.cpuProfile(i, t0, false)))
	}
	_, heap := realProfiles(t)
	ps = append(ps, model.NewProfile("heap", labels("service", "checkout", "job", "checkout", "instance", "10.0.0.7:8080"), t0, 0, heap))
	write(t, s, ps...)
	ctx := context.Background()

	f := func(typ string, ms []*model.LabelMatcher, wantInstances ...string) {
		t.Helper()
		sel := storage.ProfileSelector{Type: typ, Matchers: ms}
		series, err := s.Series(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, sr := range series {
			got = append(got, sr.Type+"/"+sr.Labels.Get("instance"))
		}
		slices.Sort(got)
		if !slices.Equal(got, wantInstances) {
			t.Errorf("series of %s%v: got %v, want %v", typ, ms, got, wantInstances)
		}
		vals, err := s.LabelValues(ctx, "instance", sel)
		if err != nil {
			t.Fatal(err)
		}
		var wantVals []string
		for _, w := range wantInstances {
			wantVals = append(wantVals, w[len(typ)+1:])
		}
		slices.Sort(wantVals)
		wantVals = slices.Compact(wantVals)
		if !slices.Equal(vals, wantVals) && typ != "" {
			t.Errorf("instance values of %s%v: got %v, want %v", typ, ms, vals, wantVals)
		}
		if typ == "" {
			return
		}
		merged, err := s.Merge(ctx, storage.MergeQuery{ProfileSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for _, p := range ps {
			if p.Type == typ && model.MatchLabels(ms, p.Labels) {
				want = addTotals(want, totals(mustParse(t, p.Pprof)))
			}
		}
		if got := totals(merged); len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Errorf("merge of %s%v: totals got %v, want %v", typ, ms, got, want)
		}
	}
	eq, ne, re, nre := model.MatchEqual, model.MatchNotEqual, model.MatchRegexp, model.MatchNotRegexp
	f("cpu", nil, "cpu/10.0.0.10:8080", "cpu/10.0.0.7:8080", "cpu/10.0.0.8:8080", "cpu/10.0.0.9:8080")
	f("cpu", []*model.LabelMatcher{matcher(t, "job", eq, "checkout")}, "cpu/10.0.0.7:8080", "cpu/10.0.0.8:8080")
	f("cpu", []*model.LabelMatcher{matcher(t, "job", eq, "checkout"), matcher(t, "instance", eq, "10.0.0.7:8080")}, "cpu/10.0.0.7:8080")
	f("cpu", []*model.LabelMatcher{matcher(t, "job", ne, "checkout")}, "cpu/10.0.0.10:8080", "cpu/10.0.0.9:8080")
	f("cpu", []*model.LabelMatcher{matcher(t, "instance", re, `10\.0\.0\.(7|9):.*`)}, "cpu/10.0.0.7:8080", "cpu/10.0.0.9:8080")
	f("cpu", []*model.LabelMatcher{matcher(t, "service", nre, "check.*|cart")}, "cpu/10.0.0.10:8080")
	// An absent label matches as "": env="" selects the series without env.
	f("cpu", []*model.LabelMatcher{matcher(t, "env", eq, "")}, "cpu/10.0.0.10:8080")
	f("heap", nil, "heap/10.0.0.7:8080")
	f("", []*model.LabelMatcher{matcher(t, "instance", eq, "10.0.0.7:8080")}, "cpu/10.0.0.7:8080", "heap/10.0.0.7:8080")
	f("block", nil)

	names, err := s.LabelNames(ctx, storage.ProfileSelector{Type: "cpu", Matchers: []*model.LabelMatcher{matcher(t, "service", eq, "search")}})
	if err != nil || !slices.Equal(names, []string{"instance", "job", "service"}) {
		t.Errorf("label names of search: got %v, %v", names, err)
	}
	types, err := s.ProfileTypes(ctx, storage.ProfileSelector{})
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 2 || types[0].Type != "cpu" || types[1].Type != "heap" ||
		!reflect.DeepEqual(types[0].SampleTypes, []storage.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}) ||
		types[0].PeriodType != (storage.ValueType{Type: "cpu", Unit: "nanoseconds"}) || len(types[1].SampleTypes) != 4 {
		t.Errorf("profile types: got %+v", types)
	}
	st, err := s.Stats(ctx)
	if err != nil || !st.DataIngested || st.Oldest != t0 || st.Newest != t0+3 {
		t.Errorf("stats: got %+v, %v; want data from %d to %d", st, err, t0, t0+3)
	}
	// Out of range: nothing.
	series, err := s.Series(ctx, storage.ProfileSelector{Start: t0 + 10, End: t0 + 20})
	if err != nil || len(series) != 0 {
		t.Errorf("series out of range: got %v, %v", series, err)
	}
}

func TestTotals(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	pg := newProgram(6, 100, 100)
	ps := series360(pg, 12, t0, false) // 2 minutes, 10 s apart
	other := model.NewProfile("cpu", labels("service", "checkout", "instance", "10.0.0.8:8080"), t0+5e9, 10e9, pg.cpuProfile(50, t0, false))
	write(t, s, append(ps, other)...)
	ctx := context.Background()
	res, err := s.Totals(ctx, storage.TotalsQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu", Start: t0, End: t0 + 120e9}, SampleType: "cpu", Step: 60e9, Exemplars: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("got %d series, want 2", len(res))
	}
	// Series are sorted by labels: the one with env, grade, job first.
	r := res[0]
	if r.Labels.Get("instance") != "10.0.0.7:8080" || len(r.Points) != 2 {
		t.Fatalf("first series: got %v with %d points, want 10.0.0.7:8080 with 2", r.Labels, len(r.Points))
	}
	for k, pt := range r.Points {
		var want, max int64
		var maxID model.RecordID
		for _, p := range ps[k*6 : k*6+6] {
			v := totals(mustParse(t, p.Pprof))[1]
			want += v
			if v > max {
				max, maxID = v, p.ID
			}
		}
		if pt.Timestamp != t0+int64(k)*60e9 || pt.Value != float64(want) {
			t.Errorf("point %d: got %d=%v, want %d=%d", k, pt.Timestamp, pt.Value, t0+int64(k)*60e9, want)
		}
		if pt.Exemplar == nil || pt.Exemplar.ProfileID != maxID || pt.Exemplar.Value != max {
			t.Errorf("point %d: exemplar %+v, want profile %s with %d", k, pt.Exemplar, maxID, max)
		}
	}
	// Grouped by service: one series, the sum of both instances.
	res, err = s.Totals(ctx, storage.TotalsQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu", Start: t0, End: t0 + 120e9}, Step: 120e9, GroupBy: []string{"service"}})
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, p := range append(ps, other) {
		want += totals(mustParse(t, p.Pprof))[1] // the default sample type: the last, cpu
	}
	if len(res) != 1 || !reflect.DeepEqual(res[0].Labels, model.Labels{{Name: "service", Value: "checkout"}}) || len(res[0].Points) != 1 || res[0].Points[0].Value != float64(want) {
		t.Fatalf("grouped: got %+v, want one point of %d", res, want)
	}
}

func TestDuplicatesAndRejects(t *testing.T) {
	s := openStore(t, t.TempDir())
	pg := newProgram(7, 100, 100)
	good := model.NewProfile("cpu", labels("service", "a"), t0, 10e9, pg.cpuProfile(0, t0, false))
	bad := model.NewProfile("cpu", labels("service", "a"), t0+1, 10e9, []byte("\x1f\x8bnot gzip"))
	garbage := model.NewProfile("cpu", labels("service", "a"), t0+2, 10e9, []byte("not a profile at all"))
	err := s.Write(context.Background(), []model.Profile{good, bad, good, garbage})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) || len(rej.Items) != 2 || rej.Items[0].Index != 1 || rej.Items[1].Index != 3 {
		t.Fatalf("got %v, want items 1 and 3 rejected", err)
	}
	write(t, s, good)
	if st := s.DiskStats(); st.Profiles != 1 {
		t.Fatalf("got %d profiles, want 1", st.Profiles)
	}
	s.Close()
	s = openStore(t, s.opts.Dir)
	defer s.Close()
	write(t, s, good)
	if st := s.DiskStats(); st.Profiles != 1 {
		t.Fatalf("after reopening: got %d profiles, want 1", st.Profiles)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	pg := newProgram(8, 200, 300)
	ps := series360(pg, 4, t0, true)
	write(t, s, ps[0], ps[1])
	path := filepath.Join(dir, dayName(dayOf(t0)), dataFileName)
	fi, _ := os.Stat(path)
	intact := fi.Size()
	write(t, s, ps[2])
	fi, _ = os.Stat(path)
	full := fi.Size()
	s.Close()

	// kill -9 during the third write: its record is half on disk (never
	// acknowledged), followed by garbage.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(intact + (full-intact)/2); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage"), intact+(full-intact)/2)
	f.Close()

	s = openStore(t, dir)
	if st := s.DiskStats(); st.Profiles != 2 || st.DiskBytes != intact {
		t.Fatalf("after the torn write: got %+v, want 2 profiles in %d bytes", st, intact)
	}
	if fi, _ := os.Stat(path); fi.Size() != intact {
		t.Fatalf("the torn tail was not truncated: %d bytes, want %d", fi.Size(), intact)
	}
	// The dictionaries lost what only the torn record added; writing the
	// lost profile again and another one works, and everything reads back.
	write(t, s, ps[2], ps[3])
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	for _, p := range ps {
		got, _, err := s.Profile(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sampleKeys(got), sampleKeys(mustParse(t, p.Pprof))) {
			t.Fatalf("profile %s differs after recovery", p.ID)
		}
	}

	// A CRC failure in the middle (bit rot) ends the file there too.
	s.Close()
	f, _ = os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, int64(len(fileMagic))+recordHeader+3)
	f.Close()
	s = openStore(t, dir)
	defer s.Close()
	if st := s.DiskStats(); st.Profiles != 0 {
		t.Fatalf("after corrupting the first record: got %d profiles, want 0", st.Profiles)
	}
}

func TestTornHeader(t *testing.T) {
	dir := t.TempDir()
	// A crash right after the partition file was created.
	if err := os.MkdirAll(filepath.Join(dir, dayName(dayOf(t0))), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, dayName(dayOf(t0)), dataFileName), []byte("VGP"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	defer s.Close()
	write(t, s, series360(newProgram(9, 50, 50), 1, t0, false)...)
	if st := s.DiskStats(); st.Profiles != 1 {
		t.Fatalf("got %d profiles, want 1", st.Profiles)
	}
	// Another version is refused, not truncated.
	other := t.TempDir()
	os.MkdirAll(filepath.Join(other, "2026-01-01"), 0o755)
	os.WriteFile(filepath.Join(other, "2026-01-01", dataFileName), []byte("VGPROF\x00\x09rest"), 0o644)
	if _, err := Open(DefaultOptions(other)); err == nil {
		t.Fatal("a partition of format version 9 was opened")
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(0, t0)
	opts := DefaultOptions(dir)
	opts.Retention = 48 * time.Hour
	opts.now = func() time.Time { return now }
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	pg := newProgram(10, 50, 50)
	day := int64(24 * time.Hour)
	var ps []model.Profile
	for d := int64(0); d < 3; d++ {
		ps = append(ps, model.NewProfile("cpu", labels("service", "a"), t0-d*day, 10e9, pg.cpuProfile(int(d), t0, false)))
	}
	tooOld := model.NewProfile("cpu", labels("service", "a"), t0-4*day, 10e9, pg.cpuProfile(9, t0, false))
	write(t, s, append(ps, tooOld)...)
	if st := s.DiskStats(); st.Partitions != 3 || st.Profiles != 3 {
		t.Fatalf("got %+v, want 3 partitions (the profile 4 days old skipped)", st)
	}
	// A day later the oldest partition's day ended more than 48 h ago.
	now = now.Add(24 * time.Hour)
	if err := s.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if st := s.DiskStats(); st.Partitions != 2 {
		t.Fatalf("got %d partitions, want 2", st.Partitions)
	}
	if _, err := os.Stat(filepath.Join(dir, dayName(dayOf(t0-2*day)))); !os.IsNotExist(err) {
		t.Fatalf("the expired partition's directory is still there: %v", err)
	}
	if _, _, err := s.Profile(context.Background(), ps[2].ID); !errors.Is(err, storage.ErrProfileNotFound) {
		t.Fatalf("expired profile: got %v, want not found", err)
	}
	s.Close()
	// Retention also applies on open.
	now = now.Add(24 * time.Hour)
	s, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.DiskStats(); st.Partitions != 1 || st.Profiles != 1 {
		t.Fatalf("after reopening a day later: got %+v, want 1 partition", st)
	}
}

func TestClosed(t *testing.T) {
	s := openStore(t, t.TempDir())
	s.Close()
	if _, err := s.Series(context.Background(), storage.ProfileSelector{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	if err := s.Write(context.Background(), series360(newProgram(11, 10, 10), 1, t0, false)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write: got %v, want ErrClosed", err)
	}
}
