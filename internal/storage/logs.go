package storage

import (
	"context"

	"github.com/vigilhq/vigil/internal/model"
)

// LogWriter is where the ingester writes log records. Write returns nil
// only once every record is durable; a record whose id is already stored
// is skipped. Records the store refuses permanently are reported with a
// *RejectedError once every other record of recs is durable.
type LogWriter interface {
	Write(ctx context.Context, recs []model.LogRecord) error
}

// LogReader is what the query API reads logs from.
type LogReader interface {
	// Select calls fn for each row matching p, in timestamp order (newest
	// first when p.Backward); fn returns false to stop early. The Row and
	// everything it points to are valid only during the call to fn: the
	// callback must copy what it keeps, and must not modify Labels.
	Select(ctx context.Context, p SelectParams, fn func(*Row) bool) error
	// LabelNames returns the label names of the streams with rows in
	// [start, end), sorted.
	LabelNames(ctx context.Context, start, end int64) ([]string, error)
	// LabelValues returns the values of label name among the streams with
	// rows in [start, end) that match ms, sorted.
	LabelValues(ctx context.Context, name string, start, end int64, ms []*model.LabelMatcher) ([]string, error)
	// Series returns the label sets of the streams with rows in [start,
	// end) that match ms.
	Series(ctx context.Context, start, end int64, ms []*model.LabelMatcher) ([]model.Labels, error)
}

// SelectParams select rows. Every log store accepts the same parameters.
type SelectParams struct {
	Start, End int64                 // Unix ns; Start inclusive, End exclusive
	Matchers   []*model.LabelMatcher // stream selector; an absent label matches as ""
	// Contains: every row's message contains each of these (case-sensitive).
	Contains []string
	// ContainsFold: every row's message contains each of these, ignoring
	// ASCII case (A–Z = a–z; other bytes compare exactly).
	ContainsFold []string
	// ContainsAny: every row's message contains at least one string of each
	// group (case-sensitive), as `|= "a" or "b"` asks.
	ContainsAny [][]string
	Backward    bool // newest first
}

// Row is one stored log line as Select returns it.
type Row struct {
	ID                model.RecordID
	Timestamp         int64 // Unix ns
	ObservedTimestamp int64 // Unix ns
	Labels            model.Labels
	Message           string
	TraceID           string
	SpanID            string
	Attributes        []model.Attr
	Truncated         bool
}
