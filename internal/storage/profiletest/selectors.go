package profiletest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func testSelectors(t *testing.T, s Store) {
	pg := NewProgram(5, 100, 100)
	var ps []model.Profile
	for i, ls := range []map[string]string{
		Labels("service", "checkout", "job", "checkout", "instance", "10.0.0.7:8080", "env", "prod"),
		Labels("service", "checkout", "job", "checkout", "instance", "10.0.0.8:8080", "env", "prod"),
		Labels("service", "cart", "job", "cart", "instance", "10.0.0.9:8080", "env", "staging"),
		Labels("service", "search", "job", "search", "instance", "10.0.0.10:8080"),
	} {
		ps = append(ps, model.NewProfile("cpu", ls, T0+int64(i), 10e9, pg.CPUProfile(i, T0, false)))
	}
	_, heap := RealProfiles(t)
	ps = append(ps, model.NewProfile("heap", Labels("service", "checkout", "job", "checkout", "instance", "10.0.0.7:8080"), T0, 0, heap))
	Write(t, s, ps...)
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
				want = addTotals(want, Totals(MustParse(t, p.Pprof)))
			}
		}
		if got := Totals(merged); len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Errorf("merge of %s%v: totals got %v, want %v", typ, ms, got, want)
		}
	}
	eq, ne, re, nre := model.MatchEqual, model.MatchNotEqual, model.MatchRegexp, model.MatchNotRegexp
	f("cpu", nil, "cpu/10.0.0.10:8080", "cpu/10.0.0.7:8080", "cpu/10.0.0.8:8080", "cpu/10.0.0.9:8080")
	f("cpu", []*model.LabelMatcher{Matcher(t, "job", eq, "checkout")}, "cpu/10.0.0.7:8080", "cpu/10.0.0.8:8080")
	f("cpu", []*model.LabelMatcher{Matcher(t, "job", eq, "checkout"), Matcher(t, "instance", eq, "10.0.0.7:8080")}, "cpu/10.0.0.7:8080")
	f("cpu", []*model.LabelMatcher{Matcher(t, "job", ne, "checkout")}, "cpu/10.0.0.10:8080", "cpu/10.0.0.9:8080")
	f("cpu", []*model.LabelMatcher{Matcher(t, "instance", re, `10\.0\.0\.(7|9):.*`)}, "cpu/10.0.0.7:8080", "cpu/10.0.0.9:8080")
	f("cpu", []*model.LabelMatcher{Matcher(t, "service", nre, "check.*|cart")}, "cpu/10.0.0.10:8080")
	// An absent label matches as "": env="" selects the series without env.
	f("cpu", []*model.LabelMatcher{Matcher(t, "env", eq, "")}, "cpu/10.0.0.10:8080")
	f("heap", nil, "heap/10.0.0.7:8080")
	f("", []*model.LabelMatcher{Matcher(t, "instance", eq, "10.0.0.7:8080")}, "cpu/10.0.0.7:8080", "heap/10.0.0.7:8080")
	f("block", nil)

	names, err := s.LabelNames(ctx, storage.ProfileSelector{Type: "cpu", Matchers: []*model.LabelMatcher{Matcher(t, "service", eq, "search")}})
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
	if err != nil || !st.DataIngested || st.Oldest != T0 || st.Newest != T0+3 {
		t.Errorf("stats: got %+v, %v; want data from %d to %d", st, err, T0, T0+3)
	}
	// Out of range: nothing.
	series, err := s.Series(ctx, storage.ProfileSelector{Start: T0 + 10, End: T0 + 20})
	if err != nil || len(series) != 0 {
		t.Errorf("series out of range: got %v, %v", series, err)
	}
}

func testTotals(t *testing.T, s Store) {
	pg := NewProgram(6, 100, 100)
	ps := Series360(pg, 12, T0, false) // 2 minutes, 10 s apart
	other := model.NewProfile("cpu", Labels("service", "checkout", "instance", "10.0.0.8:8080"), T0+5e9, 10e9, pg.CPUProfile(50, T0, false))
	Write(t, s, append(ps, other)...)
	ctx := context.Background()
	res, err := s.Totals(ctx, storage.TotalsQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu", Start: T0, End: T0 + 120e9}, SampleType: "cpu", Step: 60e9, Exemplars: true})
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
			v := Totals(MustParse(t, p.Pprof))[1]
			want += v
			if v > max {
				max, maxID = v, p.ID
			}
		}
		if pt.Timestamp != T0+int64(k)*60e9 || pt.Value != float64(want) {
			t.Errorf("point %d: got %d=%v, want %d=%d", k, pt.Timestamp, pt.Value, T0+int64(k)*60e9, want)
		}
		if pt.Exemplar == nil || pt.Exemplar.ProfileID != maxID || pt.Exemplar.Value != max {
			t.Errorf("point %d: exemplar %+v, want profile %s with %d", k, pt.Exemplar, maxID, max)
		}
	}
	// Grouped by service: one series, the sum of both instances.
	res, err = s.Totals(ctx, storage.TotalsQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu", Start: T0, End: T0 + 120e9}, Step: 120e9, GroupBy: []string{"service"}})
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, p := range append(ps, other) {
		want += Totals(MustParse(t, p.Pprof))[1] // the default sample type: the last, cpu
	}
	if len(res) != 1 || !reflect.DeepEqual(res[0].Labels, model.Labels{{Name: "service", Value: "checkout"}}) || len(res[0].Points) != 1 || res[0].Points[0].Value != float64(want) {
		t.Fatalf("grouped: got %+v, want one point of %d", res, want)
	}
}

func testDuplicatesAndRejects(t *testing.T, s Store) {
	pg := NewProgram(7, 100, 100)
	good := model.NewProfile("cpu", Labels("service", "a"), T0, 10e9, pg.CPUProfile(0, T0, false))
	bad := model.NewProfile("cpu", Labels("service", "a"), T0+1, 10e9, []byte("\x1f\x8bnot gzip"))
	garbage := model.NewProfile("cpu", Labels("service", "a"), T0+2, 10e9, []byte("not a profile at all"))
	err := s.Write(context.Background(), []model.Profile{good, bad, good, garbage})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) || len(rej.Items) != 2 || rej.Items[0].Index != 1 || rej.Items[1].Index != 3 {
		t.Fatalf("got %v, want items 1 and 3 rejected", err)
	}
	Write(t, s, good)
	ps, err := s.Profiles(context.Background(), storage.ProfileSelector{}, 0)
	if err != nil || len(ps) != 1 || ps[0].ID != good.ID {
		t.Fatalf("got %d profiles, %v; want the good one once", len(ps), err)
	}
}
