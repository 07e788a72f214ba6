package esstore

import (
	"context"

	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
)

// The method sets of query.LogStore and ingester.Store, which this internal
// package cannot import (dependencies point from components to internal/).
var (
	_ interface {
		Select(ctx context.Context, p logstore.SelectParams, fn func(*logstore.Row) bool) error
		LabelNames(ctx context.Context, start, end int64) ([]string, error)
		LabelValues(ctx context.Context, name string, start, end int64, ms []*model.LabelMatcher) ([]string, error)
		Series(ctx context.Context, start, end int64, ms []*model.LabelMatcher) ([]model.Labels, error)
	} = (*Store)(nil)
	_ interface {
		Write(ctx context.Context, recs []model.LogRecord) error
	} = (*Store)(nil)
)
