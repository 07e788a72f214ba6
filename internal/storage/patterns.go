package storage

import (
	"context"

	"github.com/vigilhq/vigil/internal/model"
)

// PatternBucket is the width of the time buckets a PatternRecord counts
// lines in, Loki's pattern chunk resolution: 10 s, in Unix ns.
const PatternBucket = int64(10e9)

// PatternRecord is one log pattern of one stream mined over one flush
// interval: how many lines of the stream matched it in each bucket.
type PatternRecord struct {
	Labels  model.Labels // the stream's labels
	Level   string       // lower case; "unknown" when the lines had none
	Pattern string       // Drain's pattern, "<_>" where lines differ
	// Buckets are the non-empty buckets, by increasing T.
	Buckets []PatternCount
}

// PatternCount is the number of lines in the bucket starting at T (Unix
// ns, a multiple of PatternBucket).
type PatternCount struct {
	T     int64
	Count int64
}

// PatternWriter is where mined patterns are persisted. WritePatterns
// returns nil once every record is durable.
type PatternWriter interface {
	WritePatterns(ctx context.Context, recs []PatternRecord) error
}

// PatternReader is what the query API reads mined patterns from.
type PatternReader interface {
	// ReadPatterns calls fn for each record of a stream matching ms with
	// buckets in [start, end). The record may hold buckets outside the
	// range, and the same stream, level and pattern may come in several
	// records (one per flush interval): the caller filters and merges. fn
	// must not keep rec after it returns.
	ReadPatterns(ctx context.Context, start, end int64, ms []*model.LabelMatcher, fn func(rec *PatternRecord)) error
}

// SplitPatternDays calls fn for each run of bs (sorted by T) within one
// UTC day, with that day's number (days since 1970-01-01): stores that
// keep data by day keep a record's buckets in the day they count.
func SplitPatternDays(bs []PatternCount, fn func(day int64, part []PatternCount)) {
	const dayNs = int64(24 * 60 * 60 * 1e9)
	dayOf := func(t int64) int64 {
		d := t / dayNs
		if t < 0 && t%dayNs != 0 {
			d--
		}
		return d
	}
	for i := 0; i < len(bs); {
		day := dayOf(bs[i].T)
		j := i + 1
		for j < len(bs) && dayOf(bs[j].T) == day {
			j++
		}
		fn(day, bs[i:j])
		i = j
	}
}
