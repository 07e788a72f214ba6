// Package esspanstore stores spans in Elasticsearch in Jaeger's own layout
// (daily indices <prefix>-jaeger-span-YYYY-MM-DD and
// <prefix>-jaeger-service-YYYY-MM-DD, Jaeger's field names and types), so a
// stock jaeger-query pointed at the same cluster reads Vigil's spans. It
// is the span ingester's storage.SpanWriter and the query layer's
// storage.SpanReader and storage.DependencyReader. The layout is described
// in docs/format/jaeger-elasticsearch.md.
package esspanstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/storage"
)

// Options configures a Store.
type Options struct {
	// URLs, authentication and TLS.
	es.ClientOptions
	// IndexPrefix is Jaeger's --es.index-prefix: indices are named
	// <prefix>-jaeger-span-YYYY-MM-DD, or jaeger-span-YYYY-MM-DD when empty.
	IndexPrefix string
	// Shards and Replicas of each daily index.
	Shards, Replicas int
	// Retention deletes a daily index once all of its day is older than
	// this; 0 keeps everything.
	Retention time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// DependencyInterval is how often Run writes the calls between services
	// of the day so far as Jaeger's daily dependency document (what Jaeger's
	// Spark job writes once a day), so a stock jaeger-query shows the
	// dependency graph; 0 never writes them.
	DependencyInterval time.Duration
}

// DefaultOptions returns options for a local single-node cluster.
func DefaultOptions() Options {
	return Options{
		ClientOptions:      es.ClientOptions{URLs: []string{"http://127.0.0.1:9200"}},
		Shards:             1,
		Replicas:           1,
		Retention:          7 * 24 * time.Hour,
		DependencyInterval: 5 * time.Minute,
		Logger:             slog.Default(),
	}
}

const (
	bulkMaxDocs    = 2000
	maxSearchHits  = 10000 // Elasticsearch's default index.max_result_window
	maxTraceIDs    = 10000 // FindTraces with Limit 0
	maxDepSpans    = 200000
	dayLayout      = "2006-01-02"
	spanIndexPart  = "jaeger-span-"
	serviceIdxPart = "jaeger-service-"
	depIndexPart   = "jaeger-dependencies-"
)

var (
	_ storage.SpanWriter       = (*Store)(nil)
	_ storage.SpanReader       = (*Store)(nil)
	_ storage.DependencyReader = (*Store)(nil)
)

// Store reads and writes spans in Elasticsearch. It is safe for concurrent
// use.
type Store struct {
	opts      Options
	logger    *slog.Logger
	c         *es.Client
	bulk      *es.BulkWriter
	retention *es.Retention
	prefix    string // "" or "<IndexPrefix>-"
	m         *metrics

	mu       sync.Mutex
	services map[string]struct{} // service docs known to be stored, by index/id
	parents  *parents
}

// Open connects to Elasticsearch, waits until the cluster is at least
// yellow and installs the span and service index templates.
func Open(ctx context.Context, opts Options) (*Store, error) {
	def := DefaultOptions()
	if len(opts.URLs) == 0 {
		opts.URLs = def.URLs
	}
	if opts.Shards <= 0 {
		opts.Shards = def.Shards
	}
	if opts.Replicas < 0 {
		opts.Replicas = 0
	}
	if opts.Logger == nil {
		opts.Logger = def.Logger
	}
	if err := es.CheckIndexPrefix(opts.IndexPrefix); err != nil {
		return nil, err
	}
	s := &Store{opts: opts, logger: opts.Logger, m: newMetrics(opts.Registerer), services: map[string]struct{}{}, parents: newParents()}
	if opts.IndexPrefix != "" {
		s.prefix = opts.IndexPrefix + "-"
	}
	conn, err := es.OpenConn(ctx, es.ConnOptions{
		Client: opts.ClientOptions,
		Daily: es.DailyIndices{Prefixes: []string{s.prefix + spanIndexPart, s.prefix + serviceIdxPart, s.prefix + depIndexPart},
			Layout: dayLayout},
		Retention: opts.Retention, ItemRetries: s.m.itemRetries, DeletedIndices: s.m.deletedIdx, Logger: opts.Logger,
		Name: "es-spans", Registerer: opts.Registerer,
	})
	if err != nil {
		return nil, err
	}
	s.c, s.bulk, s.retention = conn.Client, conn.Bulk, conn.Retention
	if err := s.installTemplates(ctx); err != nil {
		_ = s.Close() // the setup error is the one to report
		return nil, err
	}
	s.logger.Info("elasticsearch span store ready", "urls", opts.URLs, "index_prefix", opts.IndexPrefix, "retention", opts.Retention)
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

// Refresh makes everything written so far visible to searches; tests and
// tools call it, Write does not need it for durability.
func (s *Store) Refresh(ctx context.Context) error {
	return s.c.Refresh(ctx, s.prefix+"jaeger-*")
}

func (s *Store) spanIndex(day time.Time) string {
	return s.prefix + spanIndexPart + day.UTC().Format(dayLayout)
}

func (s *Store) serviceIndex(day time.Time) string {
	return s.prefix + serviceIdxPart + day.UTC().Format(dayLayout)
}
