package esprofilestore

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

// TestLimits: a selection larger than a limit fails with an error naming
// the limit, rather than reading without end.
func TestLimits(t *testing.T) {
	o := testOptions(t)
	o.Limits = Limits{MaxSeries: 2, MaxProfiles: 5, MaxMergeProfiles: 3}
	s := openES(t, o)
	pg := profiletest.NewProgram(1, 50, 50)
	var ps []model.Profile
	for i, inst := range []string{"a", "b", "c"} {
		for k := 0; k < 2; k++ {
			ts := profiletest.T0 + int64(i*2+k)*10e9
			ps = append(ps, model.NewProfile("cpu", profiletest.Labels("service", "s", "instance", inst), ts, 10e9, pg.CPUProfile(i*2+k, ts, false)))
		}
	}
	profiletest.Write(t, s, ps...)
	ctx := context.Background()
	re := profiletest.Matcher(t, "instance", model.MatchRegexp, "a|b")
	f := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", what, err, want)
		}
	}
	_, err := s.Series(ctx, storage.ProfileSelector{})
	f("series", err, "more than 2 series")
	_, err = s.Merge(ctx, storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}})
	f("merge", err, "more than 3 profiles")
	_, err = s.Profiles(ctx, storage.ProfileSelector{}, 0)
	f("profiles", err, "more than 5 profiles")
	_, err = s.Totals(ctx, storage.TotalsQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}})
	f("totals", err, "more than 5 profiles")
	// Within the limits: the regular expression resolves to two series
	// (listing three would be over the limit: the equality matcher is
	// applied first).
	got, err := s.Profiles(ctx, storage.ProfileSelector{Matchers: []*model.LabelMatcher{profiletest.Matcher(t, "instance", model.MatchNotEqual, "c"), re}}, 0)
	if err != nil || len(got) != 4 {
		t.Errorf("a|b: got %d profiles, %v; want 4", len(got), err)
	}
	// A listing with a limit reads no further than it.
	got, err = s.Profiles(ctx, storage.ProfileSelector{}, 2)
	if err != nil || len(got) != 2 || got[0].ID != ps[0].ID {
		t.Errorf("limit 2: got %d profiles, %v; want the first 2", len(got), err)
	}
}

// TestTwoWriters writes the same profiles through two stores (two
// ingesters, one redelivering what the other wrote) at once: each is
// stored once.
func TestTwoWriters(t *testing.T) {
	o := testOptions(t)
	a, b := openES(t, o), openES(t, o)
	ps := profiletest.Series360(profiletest.NewProgram(2, 100, 100), 60, profiletest.T0, false)
	var wg sync.WaitGroup
	for w, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := 0; start < len(ps); start += 7 {
				i := start
				if w == 1 {
					i = len(ps) - 7 - start
				}
				if err := s.Write(context.Background(), ps[max(i, 0):min(i+7, len(ps))]); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	profiletest.Refresh(t, a)
	got, err := a.Profiles(context.Background(), storage.ProfileSelector{}, 0)
	if err != nil || len(got) != len(ps) {
		t.Fatalf("got %d profiles, %v; want %d, each once", len(got), err, len(ps))
	}
}

// TestMixedSampleTypes: profiles of one type name whose sample types
// differ (a pushed type reused with other units) are not merged; the
// error names them.
func TestMixedSampleTypes(t *testing.T) {
	s := openES(t, testOptions(t))
	cpu, heap := profiletest.RealProfiles(t)
	a := model.NewProfile("custom", profiletest.Labels("service", "x"), profiletest.T0, 0, cpu)
	b := model.NewProfile("custom", profiletest.Labels("service", "x"), profiletest.T0+1, 0, heap)
	profiletest.Write(t, s, a, b)
	_, err := s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "custom"}})
	if err == nil || !strings.Contains(err.Error(), a.ID.String()) || !strings.Contains(err.Error(), b.ID.String()) {
		t.Fatalf("got %v, want an error naming both profiles", err)
	}
}
