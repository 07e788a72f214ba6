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

// DeleteExpired deletes the daily indices whose day ended more than
// Retention before now, and returns their names. Indices under the prefix
// whose name is not <prefix>YYYY.MM.DD are left alone.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	return s.retention.DeleteExpired(ctx, now)
}
