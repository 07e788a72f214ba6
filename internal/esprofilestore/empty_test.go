package esprofilestore

import (
	"context"
	"testing"

	"github.com/vigilhq/vigil/internal/storage"
)

// TestEmpty: a store with no index yet (a new cluster) answers every
// read with nothing, not an error.
func TestEmpty(t *testing.T) {
	s := openES(t, testOptions(t))
	ctx := context.Background()
	sel := storage.ProfileSelector{Type: "cpu"}
	if v, err := s.LabelNames(ctx, sel); err != nil || len(v) != 0 {
		t.Errorf("label names: %v, %v", v, err)
	}
	if v, err := s.LabelValues(ctx, "service", sel); err != nil || len(v) != 0 {
		t.Errorf("label values: %v, %v", v, err)
	}
	if v, err := s.Series(ctx, sel); err != nil || len(v) != 0 {
		t.Errorf("series: %v, %v", v, err)
	}
	if v, err := s.ProfileTypes(ctx, sel); err != nil || len(v) != 0 {
		t.Errorf("types: %v, %v", v, err)
	}
	if v, err := s.Profiles(ctx, sel, 0); err != nil || len(v) != 0 {
		t.Errorf("profiles: %v, %v", v, err)
	}
	if v, err := s.Totals(ctx, storage.TotalsQuery{ProfileSelector: sel}); err != nil || len(v) != 0 {
		t.Errorf("totals: %v, %v", v, err)
	}
	if p, err := s.Merge(ctx, storage.MergeQuery{ProfileSelector: sel}); err != nil || len(p.Sample) != 0 {
		t.Errorf("merge: %v", err)
	}
	if st, err := s.Stats(ctx); err != nil || st.DataIngested {
		t.Errorf("stats: %+v, %v", st, err)
	}
}
