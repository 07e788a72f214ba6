package es

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"
)

// RetentionInterval is how often Retention.Run deletes expired indices.
const RetentionInterval = time.Hour

// DailyIndices describes a store's daily indices: <prefix><day> for each of
// Prefixes, the UTC day formatted with Layout.
type DailyIndices struct {
	Prefixes []string
	Layout   string // e.g. "2006.01.02"
}

// Day parses the day of a daily index name; ok is false for a name that is
// not one of the daily indices.
func (d DailyIndices) Day(name string) (day time.Time, ok bool) {
	for _, p := range d.Prefixes {
		if s, ok := strings.CutPrefix(name, p); ok && len(s) == len(d.Layout) {
			t, err := time.Parse(d.Layout, s)
			if err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// pattern matches every index under the prefixes.
func (d DailyIndices) pattern() string {
	ps := make([]string, len(d.Prefixes))
	for i, p := range d.Prefixes {
		ps[i] = p + "*"
	}
	return strings.Join(ps, ",")
}

// DeleteExpiredDailyIndices deletes the daily indices of d whose day ended
// more than retention before now, and returns their names in order; on an
// error, the names of those it deleted before it. Indices under the
// prefixes whose name is not <prefix><day> are left alone.
func (c *Client) DeleteExpiredDailyIndices(ctx context.Context, d DailyIndices, retention time.Duration, now time.Time) ([]string, error) {
	pattern := d.pattern()
	status, body, err := c.Do(ctx, http.MethodGet, "/_cat/indices/"+pattern+"?h=index&format=json&expand_wildcards=open,closed", nil, "")
	if err != nil {
		return nil, fmt.Errorf("cannot list indices %s: %w", pattern, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("cannot list indices %s: status %d: %s", pattern, status, ErrorReason(body))
	}
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("cannot parse index list: %w", err)
	}
	var expired []string
	for _, e := range v.GetArray() {
		name := string(e.GetStringBytes("index"))
		if day, ok := d.Day(name); ok && !day.Add(24*time.Hour+retention).After(now) {
			expired = append(expired, name)
		}
	}
	slices.Sort(expired)
	var deleted []string
	const perRequest = 50 // keeps the URL short
	for i := 0; i < len(expired); i += perRequest {
		batch := expired[i:min(i+perRequest, len(expired))]
		gone, err := c.deleteIndices(ctx, batch)
		deleted = append(deleted, gone...)
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// deleteIndices deletes names and returns those it deleted. Another
// deleter may be first (another ingester's retention, an operator): when
// Elasticsearch answers that one of them no longer exists, each is
// deleted on its own and those already gone are left out.
func (c *Client) deleteIndices(ctx context.Context, names []string) ([]string, error) {
	del := func(names string) (int, error) {
		// Without ignore_unavailable, so that an index already gone is a
		// 404 and not counted as deleted here.
		status, body, err := c.Do(ctx, http.MethodDelete, "/"+names, nil, "")
		if err != nil {
			return 0, fmt.Errorf("cannot delete expired indices %s: %w", names, err)
		}
		if status != http.StatusOK && status != http.StatusNotFound {
			return status, fmt.Errorf("cannot delete expired indices %s: status %d: %s", names, status, ErrorReason(body))
		}
		return status, nil
	}
	status, err := del(strings.Join(names, ","))
	if err != nil {
		return nil, err
	}
	if status == http.StatusOK {
		return names, nil
	}
	var deleted []string
	for _, n := range names {
		status, err := del(n)
		if err != nil {
			return deleted, err
		}
		if status == http.StatusOK {
			deleted = append(deleted, n)
		}
	}
	return deleted, nil
}

// Retention deletes a store's expired daily indices.
type Retention struct {
	client  *Client
	indices DailyIndices
	// period is how long a day's index is kept after the day ends; 0
	// keeps everything.
	period  atomic.Int64
	deleted prometheus.Counter
	logger  *slog.Logger
	// pass makes Run's rounds and SetPeriod's take turns.
	pass sync.Mutex
}

// NewRetention returns the retention of the daily indices of c: each is
// deleted period after its day ends (0 keeps everything), counted in deleted
// (nil counts nothing) and logged to logger (nil is slog.Default()).
func NewRetention(c *Client, indices DailyIndices, period time.Duration, deleted prometheus.Counter, logger *slog.Logger) *Retention {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Retention{client: c, indices: indices, deleted: deleted, logger: logger}
	r.period.Store(int64(period))
	return r
}

// Period returns how long a day's index is kept after the day ends.
func (r *Retention) Period() time.Duration { return time.Duration(r.period.Load()) }

// SetPeriodOnly changes the period and deletes nothing yet: Run deletes
// past it from its next round.
func (r *Retention) SetPeriodOnly(period time.Duration) { r.period.Store(int64(period)) }

// SetPeriod changes the period and deletes at once the indices now past
// it, returning their names.
func (r *Retention) SetPeriod(ctx context.Context, period time.Duration) ([]string, error) {
	r.period.Store(int64(period))
	deleted, err := r.DeleteExpired(ctx, time.Now())
	if len(deleted) > 0 {
		r.logger.Info("deleted expired elasticsearch indices", "indices", deleted, "retention", period)
	}
	return deleted, err
}

// DeleteExpired deletes the daily indices whose day ended more than the
// period before now, and returns their names (DeleteExpiredDailyIndices).
func (r *Retention) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	r.pass.Lock()
	defer r.pass.Unlock()
	period := r.Period()
	if period <= 0 {
		return nil, nil
	}
	deleted, err := r.client.DeleteExpiredDailyIndices(ctx, r.indices, period, now)
	if r.deleted != nil {
		r.deleted.Add(float64(len(deleted)))
	}
	return deleted, err
}

// Run deletes expired indices at once and then every RetentionInterval
// until ctx ends, logging what it deleted and its errors (an error does not
// stop it). It returns nil when ctx ends; with no period it deletes nothing.
func (r *Retention) Run(ctx context.Context) error {
	t := time.NewTicker(RetentionInterval)
	defer t.Stop()
	for {
		if deleted, err := r.DeleteExpired(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.logger.Warn("cannot apply elasticsearch retention", "err", err, "retention", r.Period())
		} else if len(deleted) > 0 {
			r.logger.Info("deleted expired elasticsearch indices", "indices", deleted, "retention", r.Period())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
