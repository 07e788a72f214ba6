// Package collector receives logs (and, later, spans) from files and the
// network and ships them, in OTLP batches, to the queue. A source is
// acknowledged (HTTP 2xx, a file offset persisted) only after the queue
// durably accepted its records.
package collector

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/collector/files"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
)

// Options configures a Collector.
type Options struct {
	// MaxBodyBytes bounds an HTTP request body, compressed or decoded.
	MaxBodyBytes int64
	// BatchMaxRecords bounds one queue message.
	BatchMaxRecords int
	// BatchMaxWait is how long small HTTP requests are held to share a batch.
	BatchMaxWait time.Duration

	// FilePatterns are glob patterns of files to tail; none disables tailing.
	FilePatterns []string
	// Files configures the tailer; its Patterns and StateDir are set from
	// FilePatterns and DataDir.
	Files files.Options
	// DataDir holds the tailer's durable offsets.
	DataDir string

	// Ledger, when set, counts every record the queue accepted, for
	// reconciliation.
	Ledger Ledger

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Ledger counts produced records; see internal/reconcile.
type Ledger interface {
	Record(recs []model.LogRecord) error
}

// DefaultOptions returns options that suit one machine.
func DefaultOptions() Options {
	return Options{
		MaxBodyBytes:    16 << 20,
		BatchMaxRecords: 8192,
		BatchMaxWait:    20 * time.Millisecond,
		Logger:          slog.Default(),
	}
}

// Collector owns the receivers of one collector process.
type Collector struct {
	opts        Options
	logger      *slog.Logger
	pipeline    *pipeline
	ids         *idSource
	httpMetrics *httpMetrics
	tailer      *files.Tailer
}

// New builds a collector that publishes to p.
func New(opts Options, p queue.Producer) (*Collector, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Collector{
		opts:        opts,
		logger:      opts.Logger,
		pipeline:    newPipeline(p, opts.BatchMaxRecords, opts.BatchMaxWait, opts.Registerer),
		ids:         newIDSource(),
		httpMetrics: newHTTPMetrics(opts.Registerer),
	}
	c.pipeline.ledger, c.pipeline.logger = opts.Ledger, opts.Logger
	if len(opts.FilePatterns) > 0 {
		fo := opts.Files
		fo.Patterns = opts.FilePatterns
		fo.StateDir = filepath.Join(opts.DataDir, "collector", "files")
		fo.Logger = opts.Logger.With("component", "files")
		fo.Registerer = opts.Registerer
		t, err := files.New(fo, c.pipeline.Send)
		if err != nil {
			return nil, err
		}
		c.tailer = t
	}
	return c, nil
}

// RegisterHTTP adds the HTTP receivers to mux.
func (c *Collector) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/logs", c.handleLogsAPI)
	mux.HandleFunc("POST /v1/logs", c.handleOTLPLogs)
}

// Run tails files until ctx ends. The HTTP receivers run in the caller's
// HTTP server.
func (c *Collector) Run(ctx context.Context) error {
	if c.tailer == nil {
		<-ctx.Done()
		return nil
	}
	return c.tailer.Run(ctx)
}
