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
	// AnyOrder: the caller does not need the rows in timestamp order (a
	// count over time), so the store may return them in whatever order
	// it reads them fastest; Backward is then ignored.
	AnyOrder bool
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

// StreamStatsReader is implemented by log stores that know how many lines
// and message bytes each stream holds in a time range without reading the
// lines: the embedded store sums its block index, Elasticsearch
// aggregates. The query API answers Loki's index/volume, index/volume_range
// and index/stats from it when the query is a plain stream selector, and
// reads the lines (Select) from stores without it.
type StreamStatsReader interface {
	// StreamStats returns, for each stream matching ms with rows in
	// [start, end), its rows and message bytes (the byte length of
	// Row.Message) per bucket: one bucket when step is 0, else
	// ceil((end-start)/step) buckets, bucket i holding the rows of
	// [start+i*step, start+(i+1)*step). The counts are exact: what summing
	// the rows of Select over the same range would give. Streams are in
	// no particular order; streams without rows in the range are left out.
	StreamStats(ctx context.Context, ms []*model.LabelMatcher, start, end, step int64) ([]StreamStat, error)
}

// StreamStat is one stream's part of a StreamStats answer. Rows and Bytes
// have one element per bucket.
type StreamStat struct {
	Labels model.Labels // the stream labels, as Select's rows carry them
	Rows   []int64
	Bytes  []int64
}

// StatBuckets is the number of buckets of a StreamStats answer.
func StatBuckets(start, end, step int64) int {
	if step <= 0 || end <= start {
		return 1
	}
	return int((end - start + step - 1) / step)
}
