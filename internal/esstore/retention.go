package esstore

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// retentionInterval is how often Run deletes expired daily indices.
const retentionInterval = time.Hour

// Run applies retention until ctx ends: every hour it deletes the daily
// indices whose whole day is older than Retention. On a cluster with ILM
// the ILM policy installed by Open does this instead, and Run only waits.
func (s *Store) Run(ctx context.Context) error {
	if s.opts.Retention <= 0 || s.ilm {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(retentionInterval)
	defer t.Stop()
	for {
		if deleted, err := s.DeleteExpired(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.logger.Warn("cannot apply elasticsearch retention", "err", err)
		} else if len(deleted) > 0 {
			s.logger.Info("deleted expired elasticsearch indices", "indices", deleted, "retention", s.opts.Retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DeleteExpired deletes the daily indices whose day ended more than
// Retention before now, and returns their names. Indices under the prefix
// whose name is not <prefix>YYYY.MM.DD are left alone.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	if s.opts.Retention <= 0 {
		return nil, nil
	}
	status, body, err := s.do(ctx, http.MethodGet, "/_cat/indices/"+s.opts.IndexPrefix+"*?h=index&format=json&expand_wildcards=open,closed", nil, "")
	if err != nil {
		return nil, fmt.Errorf("cannot list indices %s*: %w", s.opts.IndexPrefix, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("cannot list indices %s*: status %d: %s", s.opts.IndexPrefix, status, errorReason(body))
	}
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("cannot parse index list: %w", err)
	}
	var expired []string
	for _, e := range v.GetArray() {
		name := string(e.GetStringBytes("index"))
		day, ok := s.indexDate(name)
		if ok && !day.Add(24*time.Hour+s.opts.Retention).After(now) {
			expired = append(expired, name)
		}
	}
	slices.Sort(expired)
	for i := 0; i < len(expired); i += 50 {
		names := strings.Join(expired[i:min(i+50, len(expired))], ",")
		status, body, err := s.do(ctx, http.MethodDelete, "/"+names+"?ignore_unavailable=true", nil, "")
		if err != nil {
			return expired[:i], fmt.Errorf("cannot delete expired indices %s: %w", names, err)
		}
		if status != http.StatusOK {
			return expired[:i], fmt.Errorf("cannot delete expired indices %s: status %d: %s", names, status, errorReason(body))
		}
		s.m.deletedIdx.Add(float64(min(i+50, len(expired)) - i))
	}
	return expired, nil
}

// indexDate parses the day of a daily index name.
func (s *Store) indexDate(name string) (time.Time, bool) {
	suffix, ok := strings.CutPrefix(name, s.opts.IndexPrefix)
	if !ok || len(suffix) != len(dayLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(dayLayout, suffix)
	return t, err == nil
}
