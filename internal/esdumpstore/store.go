// Package esdumpstore stores dumps in Elasticsearch: one document per event
// in daily indices <prefix>vigil-dumps-YYYY.MM.DD (the UTC day of the
// event), written with op_type=create and the event id as document id so
// an event is stored once however often it is delivered; and one document
// per issue in <prefix>vigil-dump-issues, changed only by a scripted upsert
// that folds events in and remembers the last ones it folded, so counts
// stay exact when two ingesters write the same issue at once and when a
// batch is retried after a partial failure. The layout is described in
// docs/format/elasticsearch.md.
package esdumpstore

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
	_ storage.DumpWriter        = (*Store)(nil)
	_ storage.DumpReader        = (*Store)(nil)
	_ storage.DumpStatsReader   = (*Store)(nil)
	_ storage.IssueStatusSetter = (*Store)(nil)
)

// Options configures a Store.
type Options struct {
	// URLs, authentication and TLS.
	es.ClientOptions
	// IndexPrefix, when set, names the indices <prefix>-vigil-dumps-… .
	IndexPrefix string
	// Shards and Replicas of each index.
	Shards, Replicas int
	// Retention deletes a daily event index once all of its day is older
	// than this; 0 keeps everything. Issues are kept.
	Retention time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns options for a local single-node cluster.
func DefaultOptions() Options {
	return Options{
		ClientOptions: es.ClientOptions{URLs: []string{"http://127.0.0.1:9200"}},
		Shards:        1, Replicas: 1, Retention: 30 * 24 * time.Hour, Logger: slog.Default(),
	}
}

const (
	eventIndexPart = "vigil-dumps-"
	issueIndexPart = "vigil-dump-issues"
	dayLayout      = "2006.01.02"
	maxWindow      = 10000 // Elasticsearch's default index.max_result_window
	// foldedIDs is how many of the events last folded into an issue its
	// document remembers, to fold a retried event only once.
	foldedIDs      = 1000
	maxIssueValues = 100
)

// withDefaults fills what o leaves empty and checks its index prefix.
func (o Options) withDefaults() (Options, error) {
	if len(o.URLs) == 0 {
		o.URLs = DefaultOptions().URLs
	}
	o.Shards, o.Replicas = max(o.Shards, 1), max(o.Replicas, 0)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, es.CheckIndexPrefix(o.IndexPrefix)
}

// Store reads and writes dumps in Elasticsearch. It is safe for
// concurrent use.
type Store struct {
	opts      Options
	logger    *slog.Logger
	c         *es.Client
	bulk      *es.BulkWriter
	retention *es.Retention
	prefix    string // "" or "<IndexPrefix>-"
	m         *metrics
}

// Open connects to Elasticsearch, waits until the cluster is at least
// yellow and installs the event and issue index templates.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{opts: opts, logger: opts.Logger, m: newMetrics(opts.Registerer)}
	if opts.IndexPrefix != "" {
		s.prefix = opts.IndexPrefix + "-"
	}
	conn, err := es.OpenConn(ctx, es.ConnOptions{
		Client: opts.ClientOptions, Daily: es.DailyIndices{Prefixes: []string{s.prefix + eventIndexPart}, Layout: dayLayout},
		Retention: opts.Retention, ItemRetries: s.m.itemRetries, DeletedIndices: s.m.deletedIdx, Logger: opts.Logger,
		Name: "es-dumps", Registerer: opts.Registerer,
	})
	if err != nil {
		return nil, err
	}
	s.c, s.bulk, s.retention = conn.Client, conn.Bulk, conn.Retention
	if err := s.installTemplates(ctx); err != nil {
		_ = s.Close() // the setup error is the one to report
		return nil, err
	}
	s.logger.Info("elasticsearch dump store ready", "urls", opts.URLs, "index_prefix", opts.IndexPrefix, "retention", opts.Retention)
	return s, nil
}

// SetRetention changes the retention while the store is open, and deletes
// at once the indices now past it.
func (s *Store) SetRetention(ctx context.Context, r time.Duration) error {
	_, err := s.retention.SetPeriod(ctx, r)
	return err
}

// Close releases the client's connections. Closing twice is harmless.
func (s *Store) Close() error { return s.c.Close() }

// Run deletes expired daily event indices every hour until ctx ends.
func (s *Store) Run(ctx context.Context) error { return s.retention.Run(ctx) }

// Refresh makes everything written so far visible to searches; tests and
// tools call it, writes do not need it for durability.
func (s *Store) Refresh(ctx context.Context) error {
	return s.c.Refresh(ctx, s.eventPattern()+","+s.issueIndex())
}

func (s *Store) eventIndex(ns int64) string {
	return s.prefix + eventIndexPart + time.Unix(0, ns).UTC().Format(dayLayout)
}

func (s *Store) eventPattern() string { return s.prefix + eventIndexPart + "*" }
func (s *Store) issueIndex() string   { return s.prefix + issueIndexPart }

// installTemplates puts the event index template and creates the issue
// index with its mapping (PUT of the template is idempotent; an issue
// index that exists is kept).
func (s *Store) installTemplates(ctx context.Context) error {
	settings := map[string]any{"index.number_of_shards": s.opts.Shards, "index.number_of_replicas": s.opts.Replicas}
	name := s.prefix + "vigil-dumps"
	err := s.c.PutJSON(ctx, "/_index_template/"+name, map[string]any{
		"index_patterns": []string{s.eventPattern()},
		"priority":       100 + len(s.prefix),
		"template":       map[string]any{"settings": settings, "mappings": eventMapping()},
		"_meta":          map[string]any{"managed_by": "vigil"},
	})
	if err != nil {
		return fmt.Errorf("cannot install index template %s: %w", name, err)
	}
	return s.createIssueIndex(ctx, settings)
}
