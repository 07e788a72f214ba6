package main

import (
	"context"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// The routed stores below are what the ingesters write to and the query
// APIs read from: each call goes to the store of the tenant of its context
// (tenantStores.get), so neither side knows about tenants.

// routedLogs routes the log store's calls, the optional readers included
// (every log store has them: patterns.Backend).
type routedLogs struct{ *tenantStores[logStore] }

func (r routedLogs) Write(ctx context.Context, recs []model.LogRecord) error {
	s, err := r.get(ctx)
	if err != nil {
		return err
	}
	return s.Write(ctx, recs)
}

func (r routedLogs) Select(ctx context.Context, p storage.SelectParams, fn func(*storage.Row) bool) error {
	s, err := r.get(ctx)
	if err != nil {
		return err
	}
	return s.Select(ctx, p, fn)
}

func (r routedLogs) LabelNames(ctx context.Context, start, end int64) ([]string, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.LabelNames(ctx, start, end)
}

func (r routedLogs) LabelValues(ctx context.Context, name string, start, end int64, ms []*model.LabelMatcher) ([]string, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.LabelValues(ctx, name, start, end, ms)
}

func (r routedLogs) Series(ctx context.Context, start, end int64, ms []*model.LabelMatcher) ([]model.Labels, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Series(ctx, start, end, ms)
}

func (r routedLogs) StreamStats(ctx context.Context, ms []*model.LabelMatcher, start, end, step int64) ([]storage.StreamStat, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.StreamStats(ctx, ms, start, end, step)
}

func (r routedLogs) ReadPatterns(ctx context.Context, start, end int64, ms []*model.LabelMatcher, fn func(*storage.PatternRecord)) error {
	s, err := r.get(ctx)
	if err != nil {
		return err
	}
	return s.ReadPatterns(ctx, start, end, ms, fn)
}

// routedSpans routes the span store's calls.
type routedSpans struct{ *tenantStores[spanStore] }

func (r routedSpans) Write(ctx context.Context, spans []model.Span) error {
	s, err := r.get(ctx)
	if err != nil {
		return err
	}
	return s.Write(ctx, spans)
}

func (r routedSpans) GetTrace(ctx context.Context, id model.TraceID) ([]model.Span, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.GetTrace(ctx, id)
}

func (r routedSpans) FindTraces(ctx context.Context, q storage.TraceQuery) ([][]model.Span, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.FindTraces(ctx, q)
}

func (r routedSpans) Services(ctx context.Context) ([]string, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Services(ctx)
}

func (r routedSpans) Operations(ctx context.Context, service, spanKind string) ([]storage.Operation, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Operations(ctx, service, spanKind)
}

func (r routedSpans) Dependencies(ctx context.Context, endTs int64, lookback time.Duration) ([]storage.Dependency, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Dependencies(ctx, endTs, lookback)
}

// routedDumps routes the dump store's calls.
type routedDumps struct{ *tenantStores[dumpStore] }

func (r routedDumps) WriteDumps(ctx context.Context, dumps []storage.GroupedDump) ([]storage.IssueChange, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.WriteDumps(ctx, dumps)
}

func (r routedDumps) SetIssueStatus(ctx context.Context, id string, status model.IssueStatus, at int64) (model.Issue, error) {
	s, err := r.get(ctx)
	if err != nil {
		return model.Issue{}, err
	}
	return s.SetIssueStatus(ctx, id, status, at)
}

func (r routedDumps) FindIssues(ctx context.Context, q storage.IssueQuery) ([]model.Issue, string, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, "", err
	}
	return s.FindIssues(ctx, q)
}

func (r routedDumps) GetIssue(ctx context.Context, id string) (model.Issue, error) {
	s, err := r.get(ctx)
	if err != nil {
		return model.Issue{}, err
	}
	return s.GetIssue(ctx, id)
}

func (r routedDumps) FindEvents(ctx context.Context, q storage.EventQuery) ([]model.Dump, string, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, "", err
	}
	return s.FindEvents(ctx, q)
}

func (r routedDumps) GetEvent(ctx context.Context, eventID string) (model.Dump, error) {
	s, err := r.get(ctx)
	if err != nil {
		return model.Dump{}, err
	}
	return s.GetEvent(ctx, eventID)
}

func (r routedDumps) CountEvents(ctx context.Context, q storage.EventQuery, step int64) ([]int64, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.CountEvents(ctx, q, step)
}

func (r routedDumps) DumpProjects(ctx context.Context) ([]storage.DumpProject, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.DumpProjects(ctx)
}

func (r routedDumps) DumpTags(ctx context.Context, q storage.EventQuery, maxValues int) ([]storage.DumpTag, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.DumpTags(ctx, q, maxValues)
}

// routedProfiles routes the profile store's calls.
type routedProfiles struct{ *tenantStores[profileStore] }

func (r routedProfiles) Write(ctx context.Context, ps []model.Profile) error {
	s, err := r.get(ctx)
	if err != nil {
		return err
	}
	return s.Write(ctx, ps)
}

func (r routedProfiles) ProfileTypes(ctx context.Context, sel storage.ProfileSelector) ([]storage.ProfileTypeInfo, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.ProfileTypes(ctx, sel)
}

func (r routedProfiles) LabelNames(ctx context.Context, sel storage.ProfileSelector) ([]string, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.LabelNames(ctx, sel)
}

func (r routedProfiles) LabelValues(ctx context.Context, name string, sel storage.ProfileSelector) ([]string, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.LabelValues(ctx, name, sel)
}

func (r routedProfiles) Series(ctx context.Context, sel storage.ProfileSelector) ([]storage.ProfileSeries, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Series(ctx, sel)
}

func (r routedProfiles) Profiles(ctx context.Context, sel storage.ProfileSelector, limit int) ([]storage.ProfileMeta, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Profiles(ctx, sel, limit)
}

func (r routedProfiles) Merge(ctx context.Context, q storage.MergeQuery) (*profile.Profile, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Merge(ctx, q)
}

func (r routedProfiles) Totals(ctx context.Context, q storage.TotalsQuery) ([]storage.ProfileTotals, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Totals(ctx, q)
}

func (r routedProfiles) Profile(ctx context.Context, id model.RecordID) (*profile.Profile, storage.ProfileMeta, error) {
	s, err := r.get(ctx)
	if err != nil {
		return nil, storage.ProfileMeta{}, err
	}
	return s.Profile(ctx, id)
}

func (r routedProfiles) Stats(ctx context.Context) (storage.ProfileStats, error) {
	s, err := r.get(ctx)
	if err != nil {
		return storage.ProfileStats{}, err
	}
	return s.Stats(ctx)
}

var (
	_ logStore     = routedLogs{}
	_ spanStore    = routedSpans{}
	_ dumpStore    = routedDumps{}
	_ profileStore = routedProfiles{}
)
