package ingester

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/storage"
)

// DefaultMaxBatchProfiles is the default bound of the profiles of one
// write: a profile is its pprof bytes, tens of kilobytes to a few
// megabytes, which the store decodes one after the other.
const DefaultMaxBatchProfiles = 64

// ProfileIngester moves profiles (one model.Profile per queue record,
// docs/format/profiles.md) from a queue consumer into a profile store, in
// batches, and commits a queue position only after the store accepted every
// profile before it. A record that does not decode, and a profile whose
// pprof bytes the store refuses, are dead-lettered with the reason.
type ProfileIngester struct {
	opts     Options
	consumer queue.Consumer
	store    storage.ProfileWriter
	dlq      DeadLetter
	m        *signalMetrics
}

// NewProfileIngester returns a profile ingester; opts.MaxBatchRecords
// bounds the profiles of one write (DefaultMaxBatchProfiles suits one
// machine). dlq may be nil: then an undecodable record or a refused
// profile stops the ingester with an error.
func NewProfileIngester(opts Options, c queue.Consumer, s storage.ProfileWriter, dlq DeadLetter) *ProfileIngester {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &ProfileIngester{opts: opts, consumer: c, store: s, dlq: dlq,
		m: newSignalMetrics(opts.Registerer, "profiles", "profile", "profile records")}
}

// Run consumes until ctx ends, draining the batch in hand (see pipeline).
func (in *ProfileIngester) Run(ctx context.Context) error {
	p := &pipeline[model.Profile]{
		opts: in.opts, logger: in.opts.Logger, consumer: in.consumer, what: "profiles",
		decode: func(dst []model.Profile, value []byte) ([]model.Profile, error) {
			pr, err := model.DecodeProfileRecord(value)
			if err != nil {
				return dst, err
			}
			// The record's bytes belong to the consumer's buffer: the
			// batch outlives the next fetch.
			pr.Pprof = append([]byte(nil), pr.Pprof...)
			return append(dst, pr), nil
		},
		deadLetter: func(ctx context.Context, m queue.Message, reason string) error {
			in.m.dead.Inc()
			if in.dlq == nil {
				return fmt.Errorf("profile record at position %d cannot be decoded and no dead-letter destination is configured: %s", m.Position, reason)
			}
			in.opts.Logger.Warn("dead-lettering an undecodable profile record", "position", m.Position, "key", m.Key, "reason", reason)
			return in.dlq.DeadLetter(ctx, m.Key, m.Value, reason)
		},
		write:    in.store.Write,
		reject:   in.reject,
		consumed: in.m.consumed, written: in.m.written, writeErrors: in.m.failures,
	}
	return p.run(ctx)
}

// reject dead-letters a profile the store refused permanently, as its
// queue record with the store's reason.
func (in *ProfileIngester) reject(ctx context.Context, p model.Profile, reason string) error {
	in.m.rejected.Inc()
	if in.dlq == nil {
		return fmt.Errorf("the profile store rejected profile %s (%s) and no dead-letter destination is configured", p.ID, reason)
	}
	in.opts.Logger.Warn("dead-lettering a profile the store rejected", "id", p.ID.String(), "type", p.Type, "reason", reason)
	return in.dlq.DeadLetter(ctx, string(model.ProfileRecordKey(&p)), model.AppendProfileRecord(nil, &p), reason)
}
