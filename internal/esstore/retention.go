package esstore

import (
	"context"
	"time"
)

// Run applies retention until ctx ends: every hour it deletes the daily
// indices whose whole day is older than Retention. On a cluster with ILM
// the ILM policy installed by Open does this instead, and Run only waits.
func (s *Store) Run(ctx context.Context) error {
	if s.ilm {
		<-ctx.Done()
		return nil
	}
	return s.retention.Run(ctx)
}

// SetRetention changes the retention while the store is open and applies
// it at once: without ILM by deleting the indices now past it; with ILM by
// installing the policy and the index templates again, which changes when
// the indices under the policy are deleted (indices created while the
// retention was 0 have no policy, and new ones have none after a change to
// 0, as after a restart with the new retention).
func (s *Store) SetRetention(ctx context.Context, r time.Duration) error {
	if !s.ilm {
		_, err := s.retention.SetPeriod(ctx, r)
		return err
	}
	s.retention.SetPeriodOnly(r)
	if err := s.installTemplate(ctx); err != nil {
		return err
	}
	return s.installPatternTemplate(ctx)
}

// DeleteExpired deletes the daily indices whose day ended more than
// Retention before now, and returns their names. Indices under the prefix
// whose name is not <prefix>YYYY.MM.DD are left alone.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	return s.retention.DeleteExpired(ctx, now)
}
