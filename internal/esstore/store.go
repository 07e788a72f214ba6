// Package esstore is Vigil's Elasticsearch log store, used in the distributed
// mode: the ingester writes records with Write, the query layer reads them
// with Select, LabelNames, LabelValues and Series.
//
// Records go to daily indices <prefix>YYYY.MM.DD (UTC day of the record's
// timestamp) with ECS field names, so Kibana Discover reads them as they are.
// The document id is the record id, so a redelivered record is recognised as
// a duplicate. The index layout is described in docs/format/elasticsearch.md.
package esstore

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/storage"
)

// TLSOptions configures TLS to Elasticsearch.
type TLSOptions = es.TLSOptions

// Options configures a Store.
type Options struct {
	// URLs, authentication and TLS.
	es.ClientOptions

	// IndexPrefix names the daily indices (<prefix>YYYY.MM.DD), the index
	// template and the ILM policy (the prefix without its trailing "-").
	IndexPrefix string
	// Retention deletes a daily index once all of its day is older than
	// this; 0 keeps everything.
	Retention time.Duration
	// Shards and Replicas of each daily index.
	Shards, Replicas int
	// RefreshInterval of each daily index; 0 keeps Elasticsearch's default
	// (1s). Larger values index faster and show new lines later.
	RefreshInterval time.Duration

	// BulkMaxDocs and BulkMaxBytes bound one bulk request.
	BulkMaxDocs, BulkMaxBytes int
	// BulkConcurrency is how many bulk requests of one Write run at once.
	BulkConcurrency int
	// MaxAttempts bounds the tries of one bulk request (whole-request
	// failures) and of one item (429 and 5xx item statuses).
	MaxAttempts int
	// RetryBase and RetryMax shape the exponential backoff (full jitter).
	RetryBase, RetryMax time.Duration
	// StartTimeout bounds how long Open waits for the cluster.
	StartTimeout time.Duration
	// SearchPageSize is how many hits Select fetches per request.
	SearchPageSize int

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns options for a local single-node cluster.
func DefaultOptions() Options {
	return Options{
		ClientOptions:   es.ClientOptions{URLs: []string{"http://127.0.0.1:9200"}},
		IndexPrefix:     "vigil-logs-",
		Retention:       7 * 24 * time.Hour,
		Shards:          1,
		Replicas:        1,
		BulkMaxDocs:     5000,
		BulkMaxBytes:    8 << 20,
		BulkConcurrency: 2,
		MaxAttempts:     8,
		RetryBase:       100 * time.Millisecond,
		RetryMax:        10 * time.Second,
		StartTimeout:    2 * time.Minute,
		SearchPageSize:  1000,
		Logger:          slog.Default(),
	}
}

var (
	_ storage.LogWriter     = (*Store)(nil)
	_ storage.LogReader     = (*Store)(nil)
	_ storage.PatternWriter = (*Store)(nil)
	_ storage.PatternReader = (*Store)(nil)
)

// Store reads and writes log records in Elasticsearch. It is safe for
// concurrent use.
type Store struct {
	opts      Options
	logger    *slog.Logger
	c         *es.Client
	bulk      *es.BulkWriter
	retention *es.Retention
	m         *metrics
	name      string // template and ILM policy name
	ilm       bool
	patPrefix string // names the daily pattern indices (patterns.go)
	patHours  patternHours
}

// Open connects to Elasticsearch, waits (at most opts.StartTimeout) until
// the cluster is at least yellow, installs the index template and, when the
// cluster has ILM, the retention policy.
func Open(ctx context.Context, opts Options) (*Store, error) {
	def := DefaultOptions()
	if len(opts.URLs) == 0 {
		opts.URLs = def.URLs
	}
	if opts.IndexPrefix == "" {
		opts.IndexPrefix = def.IndexPrefix
	}
	if err := es.CheckIndexPrefix(opts.IndexPrefix); err != nil {
		return nil, err
	}
	setDefault(&opts.Shards, def.Shards)
	if opts.Replicas < 0 {
		opts.Replicas = 0
	}
	setDefault(&opts.BulkMaxDocs, def.BulkMaxDocs)
	setDefault(&opts.BulkMaxBytes, def.BulkMaxBytes)
	setDefault(&opts.BulkConcurrency, def.BulkConcurrency)
	setDefault(&opts.MaxAttempts, def.MaxAttempts)
	setDefault(&opts.SearchPageSize, def.SearchPageSize)
	if opts.RetryBase <= 0 {
		opts.RetryBase = def.RetryBase
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = def.RetryMax
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = def.StartTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}

	c, err := es.NewClient(opts.ClientOptions, opts.Logger)
	if err != nil {
		return nil, err
	}
	c.SetMaxIdleConnsPerHost(opts.BulkConcurrency + 4)
	s := &Store{
		opts:   opts,
		logger: opts.Logger,
		c:      c,
		m:      newMetrics(opts.Registerer),
		name:   strings.TrimRight(opts.IndexPrefix, "-_."),
	}
	s.patPrefix = patternPrefix(opts.IndexPrefix)
	bo := es.PolicyOptions{Name: "es-logs", MaxAttempts: opts.MaxAttempts, RetryBase: opts.RetryBase, RetryMax: opts.RetryMax,
		WriteResilience: opts.Write, Registerer: opts.Registerer}
	s.bulk, err = es.NewBulkWriter(c, bo, es.BulkMetrics{Requests: s.m.bulkRequests, Duration: s.m.bulkSeconds, ItemRetries: s.m.itemRetries})
	if err != nil {
		_ = c.Close() // the setup error is the one to report
		return nil, err
	}
	s.retention = es.NewRetention(c, es.DailyIndices{Prefixes: []string{opts.IndexPrefix, s.patPrefix}, Layout: dayLayout},
		opts.Retention, s.m.deletedIdx, opts.Logger)
	if err := c.WaitForCluster(ctx, opts.StartTimeout); err != nil {
		_ = s.Close() // the setup error is the one to report
		return nil, err
	}
	if err := s.detectILM(ctx); err != nil {
		_ = s.Close() // the setup error is the one to report
		return nil, err
	}
	if err := s.installTemplate(ctx); err != nil {
		_ = s.Close() // the setup error is the one to report
		return nil, err
	}
	if err := s.installPatternTemplate(ctx); err != nil {
		_ = s.Close() // the setup error is the one to report
		return nil, err
	}
	s.logger.Info("elasticsearch log store ready", "urls", opts.URLs, "index_prefix", opts.IndexPrefix, "ilm", s.ilm, "retention", opts.Retention)
	return s, nil
}

func setDefault(p *int, v int) {
	if *p <= 0 {
		*p = v
	}
}

// Close releases the client's connections. Closing twice is harmless.
func (s *Store) Close() error { return s.c.Close() }

// ILM reports whether the cluster has index lifecycle management, in which
// case retention is an ILM policy instead of Run's own index deletion.
func (s *Store) ILM() bool { return s.ilm }

// Refresh makes everything written so far visible to searches. Write does
// not need it for durability; tests and tools call it.
func (s *Store) Refresh(ctx context.Context) error {
	return s.c.Refresh(ctx, s.opts.IndexPrefix+"*,"+s.patPrefix+"*")
}

// backoff shapes the retries of search requests.
func (s *Store) backoff() backoff.Backoff {
	return backoff.Backoff{Min: s.opts.RetryBase, Max: s.opts.RetryMax, Jitter: 0.5}
}
