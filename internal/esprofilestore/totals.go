package esprofilestore

import (
	"context"

	"github.com/vigilhq/vigil/internal/storage"
)

// Totals implements storage.ProfileReader. It reads the documents'
// totals, computed when they were written, never their pprof bytes; at
// most Limits.MaxProfiles documents.
func (s *Store) Totals(ctx context.Context, q storage.TotalsQuery) ([]storage.ProfileTotals, error) {
	sel, err := s.selection(ctx, &q.ProfileSelector)
	if err != nil {
		return nil, err
	}
	acc := storage.NewTotalsAcc(&q)
	series := map[string]*storage.TotalsSeries{}
	err = s.each(ctx, sel, metaFields, pageSize, s.opts.Limits.MaxProfiles, "series totals", func(d *doc) error {
		i := storage.SampleTypeIndex(d.SampleTypes, d.DefaultSampleType, q.SampleType)
		if i < 0 || i >= len(d.Totals) {
			return nil
		}
		id, err := parseID(d.ID)
		if err != nil {
			return err
		}
		ls := d.labels()
		k := seriesID(d.Type, ls)
		sr, ok := series[k]
		if !ok {
			sr = acc.Series(ls)
			series[k] = sr
		}
		sr.Add(id, d.TimeNanos, d.Totals[i])
		return nil
	})
	if err != nil {
		return nil, err
	}
	return acc.Totals(), nil
}
