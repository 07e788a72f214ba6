// Package collector receives logs (files, the logs API, OTLP, Loki push),
// spans (OTLP, Jaeger thrift over UDP and HTTP, Zipkin) and Sentry error
// events (envelopes and store payloads) and ships them to one queue per
// signal: logs and spans in OTLP batches, each event as one model.Dump. A
// source is acknowledged (HTTP 2xx, a file offset persisted) only after the
// queue durably accepted its records. The collector owns its listeners: Listen binds them, Run serves
// them until its context ends and drains them.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/vigilhq/vigil/collector/files"
	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/lokipush"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// Options configures a Collector.
type Options struct {
	// MaxBodyBytes bounds an HTTP request body, compressed or decoded.
	MaxBodyBytes int64
	// LokiMaxLineBytes refuses longer lines pushed to the Loki push API,
	// as Loki's max_line_size does; 0 accepts any length.
	LokiMaxLineBytes int
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
	// LocalTenant is the tenant of the records that arrive without
	// credentials: tailed files and the Jaeger UDP agent ports; "" is the
	// default tenant.
	LocalTenant string

	// Ledger, when set, counts every record the queue accepted, for
	// reconciliation.
	Ledger Ledger

	// Listen are the addresses of the receivers.
	Listen Addrs
	// TLS, when set, serves every TCP receiver (HTTP and OTLP/gRPC) over
	// TLS; the Jaeger UDP ports stay plain.
	TLS *tlsconfig.Server
	// Ops, when set, adds the operational endpoints (/metrics, /healthz, …)
	// to every HTTP port the collector serves.
	Ops func(*http.ServeMux)
	// Guard, when set, wraps the handler of each HTTP port, named as in
	// Addr (authentication: see internal/auth).
	Guard func(port string, h http.Handler) http.Handler
	// GRPCServerOptions are added to the OTLP/gRPC server's (its
	// authentication interceptors).
	GRPCServerOptions []grpc.ServerOption
	// SampleRate is the fraction of traces kept by head sampling; spans of
	// grade-1 services are always kept. ServiceSampleRates overrides it per
	// service, e.g. "search=0.1,batch=0.01".
	SampleRate         float64
	ServiceSampleRates string
	// Overload configures the receivers' overload protection: a guard
	// shedding by grade and a fair budget per service; off by default.
	Overload OverloadOptions
	// Limits are the per-tenant ingestion limits; none by default.
	Limits LimitsOptions
	// Dumps configures the Sentry-compatible dumps intake, served when the
	// collector has a dumps queue.
	Dumps DumpsOptions
	// Metrics, when set, receives the OTLP metrics of POST /v1/metrics and
	// MetricsService/Export; without it they are not served (404 and
	// UNIMPLEMENTED).
	Metrics MetricsDestination

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Ledger counts produced records; see internal/reconcile.
type Ledger interface {
	// Record counts recs, records of tenant.
	Record(tenant string, recs []model.LogRecord) error
}

// DefaultOptions returns options that suit one machine.
func DefaultOptions() Options {
	return Options{
		MaxBodyBytes:     16 << 20,
		LokiMaxLineBytes: lokipush.DefaultMaxLineBytes,
		BatchMaxRecords:  8192,
		BatchMaxWait:     20 * time.Millisecond,
		Listen:           Addrs{HTTP: config.DefaultCollectorHTTPAddr},
		SampleRate:       1,
		Dumps:            DefaultDumpsOptions(),
		Logger:           slog.Default(),
	}
}

// Collector owns the receivers of one collector process.
type Collector struct {
	opts        Options
	logger      *slog.Logger
	pipeline    *pipeline
	ids         *idSource
	httpMetrics *httpMetrics
	admission   *admission     // nil: no overload protection
	limits      *tenantLimiter // nil: no tenant limits
	tailer      *files.Tailer
	traces      *Traces      // nil without a span queue
	dumps       *dumpsIntake // nil without a dumps queue

	serve   []func(context.Context) error // what Listen bound
	closers []func() error
	addrs   map[string]string // listener name → bound address
}

// Queues are where the receivers publish, one queue per signal. The
// receivers of a signal whose queue is nil are not served.
type Queues struct {
	Logs  queue.Producer
	Spans queue.Producer
	// Dumps receives one record per Sentry error event: key the project
	// id, value the model.Dump as JSON (docs/format/dumps.md).
	Dumps queue.Producer
}

// New builds a collector that publishes to q; it listens once Listen is
// called.
func New(opts Options, q Queues) (*Collector, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := q.Logs
	if p == nil {
		return nil, errors.New("collector: no log queue")
	}
	c := &Collector{
		opts:        opts,
		logger:      opts.Logger,
		pipeline:    newPipeline(p, opts.BatchMaxRecords, opts.BatchMaxWait, opts.Registerer),
		ids:         newIDSource(),
		httpMetrics: newHTTPMetrics(opts.Registerer),
	}
	c.pipeline.ledger, c.pipeline.logger = opts.Ledger, opts.Logger
	if o := opts.Overload; o.MaxInflight != 0 || o.ServiceRate != 0 {
		a, err := newAdmission(o, opts.Registerer)
		if err != nil {
			return nil, err
		}
		c.admission = a
	}
	if l := opts.Limits; l.IngestionRate != 0 || l.MaxStreams != 0 || l.Tenants != nil {
		tl, err := newTenantLimiter(l, opts.Registerer)
		if err != nil {
			return nil, err
		}
		c.limits = tl
	}
	localTenant := opts.LocalTenant
	if localTenant == "" {
		localTenant = auth.DefaultTenant
	}
	if len(opts.FilePatterns) > 0 {
		fo := opts.Files
		fo.Patterns = opts.FilePatterns
		fo.StateDir = filepath.Join(opts.DataDir, "collector", "files")
		fo.Logger = opts.Logger.With("component", "files")
		fo.Registerer = opts.Registerer
		t, err := files.New(fo, func(ctx context.Context, recs []model.LogRecord) error {
			return c.pipeline.Send(auth.WithTenant(ctx, localTenant), recs)
		})
		if err != nil {
			return nil, err
		}
		c.tailer = t
	}
	if q.Spans != nil {
		sampler, err := NewSampler(opts.SampleRate, opts.ServiceSampleRates, opts.Registerer)
		if err != nil {
			return nil, fmt.Errorf("--collector.sampling.*: %w", err)
		}
		c.traces = NewTraces(q.Spans, sampler, opts.MaxBodyBytes, opts.Logger.With("component", "traces"), opts.Registerer)
		c.traces.admission, c.traces.limits = c.admission, c.limits
		c.traces.localTenant = localTenant
	}
	if q.Dumps != nil {
		in, err := newDumpsIntake(q.Dumps, opts.Dumps, c.httpMetrics, opts.Logger.With("component", "dumps"), opts.Registerer)
		if err != nil {
			return nil, err
		}
		in.admission, in.limits = c.admission, c.limits
		c.dumps = in
	}
	return c, nil
}

// RegisterHTTP adds the HTTP receivers to mux.
func (c *Collector) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/logs", c.handleLogsAPI)
	mux.HandleFunc("POST /v1/logs", c.handleOTLPLogs)
	mux.HandleFunc("POST /loki/api/v1/push", c.handleLokiPush)
	if c.opts.Metrics != nil {
		mux.HandleFunc("POST /v1/metrics", c.handleOTLPMetrics)
	}
}
