package esprofilestore

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/storage"
)

// mergePage is the documents (pprof bytes included) of one search of
// Merge: a page of 10-second CPU profiles is a few megabytes.
const mergePage = 100

// spanLabel is the pprof label the OpenTelemetry–Pyroscope integration
// tags samples with.
const spanLabel = "span_id"

// decode returns the profile of d, its time and duration those of the
// document where the pprof bytes carry none.
func (s *Store) decode(d *doc) (*profile.Profile, error) {
	pp, err := storage.DecodePprof(d.Pprof, s.opts.MaxDecodedBytes)
	if err != nil {
		return nil, fmt.Errorf("stored profile %s: %w", d.ID, err)
	}
	if pp.TimeNanos == 0 {
		pp.TimeNanos, pp.DurationNanos = d.TimeNanos, d.DurationNanos
	}
	return pp, nil
}

// Merge implements storage.ProfileReader with profile.Merge, a page of
// profiles at a time, at most Limits.MaxMergeProfiles profiles.
func (s *Store) Merge(ctx context.Context, q storage.MergeQuery) (*profile.Profile, error) {
	sel, err := s.selection(ctx, &q.ProfileSelector)
	if err != nil {
		return nil, err
	}
	if len(q.ProfileIDs) > 0 {
		ids := make([]string, len(q.ProfileIDs))
		for i, id := range q.ProfileIDs {
			ids[i] = id.String()
		}
		sel.filter = append(sel.filter, obj{"terms": obj{"id": ids}})
	}
	var spans map[string]bool
	if len(q.SpanIDs) > 0 {
		spans = make(map[string]bool, len(q.SpanIDs))
		for _, sp := range q.SpanIDs {
			spans[sp] = true
		}
	}
	var acc *profile.Profile
	var first *doc
	var page []*profile.Profile
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		if acc != nil {
			page = append([]*profile.Profile{acc}, page...)
		}
		m, err := profile.Merge(page)
		if err != nil {
			return fmt.Errorf("cannot merge the profiles of the selection: %w", err)
		}
		acc, page = m, page[:0]
		return nil
	}
	err = s.each(ctx, sel, nil, mergePage, s.opts.Limits.MaxMergeProfiles, "a merge", func(d *doc) error {
		if first == nil {
			first = d
		} else if d.Signature != first.Signature {
			return fmt.Errorf("profiles %s and %s of the selection have different sample types (%s and %s): cannot merge them; select one profile type",
				first.ID, d.ID, first.Signature, d.Signature)
		}
		pp, err := s.decode(d)
		if err != nil {
			return err
		}
		keepSamples(pp, spans, q.KeepSampleLabels)
		if page = append(page, pp); len(page) == mergePage {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	if acc == nil {
		return &profile.Profile{}, nil
	}
	return acc, nil
}

// keepSamples keeps the samples of pp tagged with one of spans (all when
// spans is nil), and drops the samples' pprof labels unless keepLabels, so
// that profile.Merge adds samples up by stack alone, as Pyroscope does.
func keepSamples(pp *profile.Profile, spans map[string]bool, keepLabels bool) {
	if spans != nil {
		pp.Sample = slices.DeleteFunc(pp.Sample, func(smp *profile.Sample) bool {
			return !slices.ContainsFunc(smp.Label[spanLabel], func(v string) bool { return spans[v] })
		})
	}
	if !keepLabels {
		for _, smp := range pp.Sample {
			smp.Label, smp.NumLabel, smp.NumUnit = nil, nil, nil
		}
	}
}
