package es

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
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
	const perRequest = 50 // keeps the URL short
	for i := 0; i < len(expired); i += perRequest {
		names := strings.Join(expired[i:min(i+perRequest, len(expired))], ",")
		status, body, err := c.Do(ctx, http.MethodDelete, "/"+names+"?ignore_unavailable=true", nil, "")
		if err != nil {
			return expired[:i], fmt.Errorf("cannot delete expired indices %s: %w", names, err)
		}
		if status != http.StatusOK {
			return expired[:i], fmt.Errorf("cannot delete expired indices %s: status %d: %s", names, status, ErrorReason(body))
		}
	}
	return expired, nil
}

// Retention deletes a store's expired daily indices.
type Retention struct {
	Client  *Client
	Indices DailyIndices
	// Period is how long a day's index is kept after the day ends; 0
	// keeps everything.
	Period time.Duration
	// Deleted counts the indices deleted; nil counts nothing.
	Deleted prometheus.Counter
	// Logger gets what Run deleted and its errors; nil is slog.Default().
	Logger *slog.Logger
}

// DeleteExpired deletes the daily indices whose day ended more than Period
// before now, and returns their names (DeleteExpiredDailyIndices).
func (r *Retention) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	if r.Period <= 0 {
		return nil, nil
	}
	deleted, err := r.Client.DeleteExpiredDailyIndices(ctx, r.Indices, r.Period, now)
	if r.Deleted != nil {
		r.Deleted.Add(float64(len(deleted)))
	}
	return deleted, err
}

// Run deletes expired indices at once and then every RetentionInterval
// until ctx ends, logging what it deleted and its errors (an error does not
// stop it). It returns nil when ctx ends; with no Period it only waits.
func (r *Retention) Run(ctx context.Context) error {
	if r.Period <= 0 {
		<-ctx.Done()
		return nil
	}
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	t := time.NewTicker(RetentionInterval)
	defer t.Stop()
	for {
		if deleted, err := r.DeleteExpired(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logger.Warn("cannot apply elasticsearch retention", "err", err, "retention", r.Period)
		} else if len(deleted) > 0 {
			logger.Info("deleted expired elasticsearch indices", "indices", deleted, "retention", r.Period)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
