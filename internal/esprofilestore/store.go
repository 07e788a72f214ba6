// Package esprofilestore stores profiles in Elasticsearch, for the
// distributed mode: one document per profile in daily indices
// <prefix>vigil-profiles-YYYY.MM.DD (the UTC day of the profile's time),
// written with op_type=create and the profile's id as document id, so a
// profile delivered twice (a redelivery after a crash, two ingesters) is
// stored once, and a profile is one document: stored whole or not at all.
// The pprof bytes are kept gzipped in a binary field that is neither
// indexed nor in doc values; the type, the labels, the time and the series
// are keyword and long fields the readers filter and aggregate on. The
// mapping and its reasons are in docs/profiles.md.
package esprofilestore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/storage"
)

var (
	_ storage.ProfileWriter = (*Store)(nil)
	_ storage.ProfileReader = (*Store)(nil)
)

// Options configures a Store.
type Options struct {
	// URLs, authentication and TLS.
	es.ClientOptions
	// IndexPrefix, when set, names the indices <prefix>-vigil-profiles-… .
	IndexPrefix string
	// Shards and Replicas of each index.
	Shards, Replicas int
	// Retention deletes a daily index once all of its day is older than
	// this, and skips profiles older than that when written; 0 keeps
	// everything.
	Retention time.Duration
	// MaxDecodedBytes bounds the size of a profile's pprof once
	// decompressed; a larger profile is refused. 0 means 64 MiB.
	MaxDecodedBytes int64
	// Limits bound what one query reads; zero fields take the defaults.
	Limits Limits

	Logger     *slog.Logger
	Registerer prometheus.Registerer

	now func() time.Time // tests move the clock
}

// Limits bound the work of one query. A query over more than a limit
// fails with an error naming it, rather than reading without end.
type Limits struct {
	// MaxSeries is the most series a selection may resolve to when its
	// matchers need the series listed (regular expressions) and the most
	// Series, LabelNames and LabelValues answer.
	MaxSeries int
	// MaxProfiles is the most profiles Profiles (without a limit) and
	// Totals read.
	MaxProfiles int
	// MaxMergeProfiles is the most profiles one Merge decodes.
	MaxMergeProfiles int
}

// DefaultLimits are the limits of a Store whose Options leave them zero.
func DefaultLimits() Limits {
	return Limits{MaxSeries: 10000, MaxProfiles: 200000, MaxMergeProfiles: 20000}
}

// DefaultOptions returns options for a local single-node cluster.
func DefaultOptions() Options {
	return Options{
		ClientOptions: es.ClientOptions{URLs: []string{"http://127.0.0.1:9200"}},
		Shards:        1, Replicas: 1, Retention: 30 * 24 * time.Hour, Limits: DefaultLimits(), Logger: slog.Default(),
	}
}

const (
	indexPart              = "vigil-profiles-"
	dayLayout              = "2006.01.02"
	defaultMaxDecodedBytes = 64 << 20
	// maxBulkBytes bounds the documents of one bulk request; a batch of
	// large profiles goes in several.
	maxBulkBytes = 16 << 20
)

// withDefaults fills what o leaves empty and checks its index prefix.
func (o Options) withDefaults() (Options, error) {
	if len(o.URLs) == 0 {
		o.URLs = DefaultOptions().URLs
	}
	o.Shards, o.Replicas = max(o.Shards, 1), max(o.Replicas, 0)
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = defaultMaxDecodedBytes
	}
	d := DefaultLimits()
	if o.Limits.MaxSeries <= 0 {
		o.Limits.MaxSeries = d.MaxSeries
	}
	if o.Limits.MaxProfiles <= 0 {
		o.Limits.MaxProfiles = d.MaxProfiles
	}
	if o.Limits.MaxMergeProfiles <= 0 {
		o.Limits.MaxMergeProfiles = d.MaxMergeProfiles
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o, es.CheckIndexPrefix(o.IndexPrefix)
}

// Store reads and writes profiles in Elasticsearch. It is safe for
// concurrent use.
type Store struct {
	*es.Conn // the client, the bulk writer and the retention
	opts     Options
	logger   *slog.Logger
	prefix   string // "" or "<IndexPrefix>-"
	m        *metrics
}

// Open connects to Elasticsearch, waits until the cluster is at least
// yellow and installs the index template of the daily indices.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{opts: opts, logger: opts.Logger, m: newMetrics(opts.Registerer)}
	if opts.IndexPrefix != "" {
		s.prefix = opts.IndexPrefix + "-"
	}
	s.Conn, err = es.OpenConn(ctx, es.ConnOptions{
		Client: opts.ClientOptions, Daily: es.DailyIndices{Prefixes: []string{s.prefix + indexPart}, Layout: dayLayout},
		Retention: opts.Retention, ItemRetries: s.m.itemRetries, DeletedIndices: s.m.deletedIdx, Logger: opts.Logger,
		Name: "es-profiles", Registerer: opts.Registerer,
	})
	if err != nil {
		return nil, err
	}
	if err := s.installTemplate(ctx); err != nil {
		_ = s.Close() // the setup error is the one to report
		return nil, err
	}
	s.logger.Info("elasticsearch profile store ready", "urls", opts.URLs, "index_prefix", opts.IndexPrefix, "retention", opts.Retention)
	return s, nil
}

// SetRetention changes the retention while the store is open, and deletes
// at once the indices now past it.
func (s *Store) SetRetention(ctx context.Context, r time.Duration) error {
	_, err := s.Retention.SetPeriod(ctx, r)
	return err
}

// Close releases the client's connections; Run deletes expired daily
// indices every hour until ctx ends; Refresh makes what was written
// visible to searches (tests and tools call it; durability needs none).
func (s *Store) Close() error                      { return s.Client.Close() }
func (s *Store) Run(ctx context.Context) error     { return s.Retention.Run(ctx) }
func (s *Store) Refresh(ctx context.Context) error { return s.Client.Refresh(ctx, s.pattern()) }

func (s *Store) index(ns int64) string {
	return s.prefix + indexPart + time.Unix(0, ns).UTC().Format(dayLayout)
}

func (s *Store) pattern() string { return s.prefix + indexPart + "*" }

// installTemplate puts the index template of the daily indices (PUT is
// idempotent).
func (s *Store) installTemplate(ctx context.Context) error {
	name := s.prefix + "vigil-profiles"
	err := s.Client.PutJSON(ctx, "/_index_template/"+name, obj{
		"index_patterns": []string{s.pattern()},
		"priority":       100 + len(s.prefix),
		"template":       obj{"settings": settings(s.opts.Shards, s.opts.Replicas), "mappings": mapping()},
		"_meta":          obj{"managed_by": "vigil"},
	})
	if err != nil {
		return fmt.Errorf("cannot install index template %s: %w", name, err)
	}
	return nil
}
