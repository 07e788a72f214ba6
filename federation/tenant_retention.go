package federation

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Per-tenant retention of metrics. The TSDB keeps everything for
// --federation.retention; a tenant whose retention in --auth.config is
// shorter has its older samples deleted (tombstoned, then compacted away)
// by a pass every TenantRetentionInterval. A longer one cannot keep data
// past the TSDB's own retention.

// applyTenantRetention deletes, for each tenant of the retentions given,
// its samples older than now minus its retention, and returns how many
// tenants it pruned.
func (f *Federation) applyTenantRetention(ctx context.Context, now time.Time, retentions map[string]time.Duration) (int, error) {
	pruned := 0
	for tenant, keep := range retentions {
		if keep <= 0 {
			continue
		}
		before := now.Add(-keep).UnixMilli()
		m, err := labels.NewMatcher(labels.MatchEqual, TenantLabel, tenantValue(tenant))
		if err != nil {
			return pruned, err
		}
		// A matcher on "" (the default tenant) selects the series without
		// the label, as the TSDB's postings do for every empty match.
		if err := f.db.Delete(ctx, math.MinInt64, before, m); err != nil {
			return pruned, fmt.Errorf("cannot delete the samples of tenant %q older than %s: %w", tenant, keep, err)
		}
		pruned++
	}
	if pruned > 0 {
		if err := f.db.CleanTombstones(); err != nil {
			return pruned, fmt.Errorf("cannot compact away the deleted samples: %w", err)
		}
	}
	return pruned, nil
}

// tenantRetention runs applyTenantRetention every interval until ctx ends.
func (f *Federation) tenantRetention(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := f.applyTenantRetention(ctx, time.Now(), f.o.TenantRetentions()); err != nil {
			f.logger.Error("per-tenant retention failed; retrying at the next pass", "err", err)
			f.metrics.tenantRetentionErrors.Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
