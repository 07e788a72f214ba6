// Package federation is Vigil's metrics server, built on Prometheus' own
// libraries: it scrapes the targets of a Prometheus configuration file
// (service /metrics endpoints and leaf Prometheus /federate endpoints) into
// an embedded TSDB, answers the Prometheus HTTP API with the PromQL engine,
// serves /federate to a higher level, takes remote write in, remote-writes
// out, evaluates rule files and sends alerts to Alertmanager.
package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/logging"

	// The service discovery mechanisms a configuration may use, besides
	// static_configs: file_sd_configs and http_sd_configs. Only these
	// are registered, not discovery/install and its cloud SDKs.
	_ "github.com/prometheus/prometheus/discovery/file"
	_ "github.com/prometheus/prometheus/discovery/http"
)

// Options configure a Federation.
type Options struct {
	// ConfigFile is a Prometheus configuration file (global,
	// scrape_configs, rule_files, remote_write, alerting); empty runs with
	// Prometheus' defaults and no targets.
	ConfigFile string
	// RuleFiles are evaluated besides the configuration's rule_files:
	// the golden-signal rules Vigil generates (federation/golden).
	RuleFiles []string
	// Dir is the TSDB's directory.
	Dir string
	// Retention is how long samples are kept.
	Retention time.Duration
	// ReloadInterval is how often ConfigFile is checked for changes (and
	// applied when it changed); 0 reloads only on Reload (SIGHUP).
	ReloadInterval time.Duration
	// LookbackDelta is how far back PromQL and /federate look for a
	// sample.
	LookbackDelta time.Duration
	// QueryTimeout bounds one PromQL query; MaxSamples the samples one
	// query may load.
	QueryTimeout time.Duration
	MaxSamples   int
	// MaxExemplars is the size of the exemplar ring buffer; 0 disables
	// exemplar storage.
	MaxExemplars int64
	// TargetReloadInterval is how often the scrape manager applies what
	// service discovery found (Prometheus: 5s).
	TargetReloadInterval time.Duration
	// ExternalURL is how users reach this server: the generator URL of
	// alerts and the global URL of targets.
	ExternalURL string
	// Limits bound the pushes and the series of the TSDB.
	Limits Limits
	// TenantMaxSeries is the most active series tenant may hold (its
	// max_series in --auth.config); 0, or a nil func, sets no bound
	// besides Limits'. It is called on the creation of a series, so it
	// must be quick.
	TenantMaxSeries func(tenant string) int
	// TenantRetentions returns the tenants whose metrics are kept for less
	// than the TSDB's retention, and for how long (their retention in
	// --auth.config); nil keeps every tenant's for the TSDB's retention.
	// Their older samples are deleted every TenantRetentionInterval (1h).
	TenantRetentions        func() map[string]time.Duration
	TenantRetentionInterval time.Duration
	// SDMaxBytes bounds one answer of http_sd_configs (scrape targets and
	// alertmanagers); 0 is DefaultSDMaxBytes.
	SDMaxBytes int64
	// Version is reported by /api/v1/status/buildinfo.
	Version string

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// DefaultOptions returns Prometheus' defaults.
func DefaultOptions() Options {
	return Options{
		Retention:            15 * 24 * time.Hour,
		ReloadInterval:       10 * time.Second,
		LookbackDelta:        5 * time.Minute,
		QueryTimeout:         2 * time.Minute,
		MaxSamples:           50_000_000,
		MaxExemplars:         100_000,
		TargetReloadInterval: 5 * time.Second,
		Limits:               DefaultLimits(),
		Version:              "dev",
		ExternalURL:          "http://localhost:9095",
	}
}

// Federation is the metrics server. Build it with New, serve it with
// RegisterHTTP, run it with Run, release it with Close.
type Federation struct {
	o      Options
	logger *slog.Logger

	db      *tsdb.DB
	fanout  storage.Storage
	remote  remoteStorage
	engine  *promql.Engine
	scrapes *scrape.Manager
	// sdLimit bounds the answers of http_sd_configs.
	sdLimit  *sdLimit
	scrapeD  *discovery.Manager
	scrapeC  context.CancelFunc
	rules    ruleEngine
	metrics  *metrics
	budget   *seriesBudget
	push     *pushGuard
	tenants  *tenancy
	api      http.Handler
	external *url.URL

	mu      sync.RWMutex
	cfg     *config.Config
	cfgHash string
}

// New opens the TSDB under o.Dir, reads o.ConfigFile and builds the
// scrape, rule and notification managers. Nothing runs until Run.
func New(o Options) (f *Federation, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.NewRegistry()
	}
	if o.Dir == "" {
		return nil, errors.New("federation: no TSDB directory")
	}
	ext, err := url.Parse(o.ExternalURL)
	if err != nil || ext.Host == "" {
		return nil, fmt.Errorf("federation: external URL %q: want scheme://host:port", o.ExternalURL)
	}
	f = &Federation{o: o, logger: o.Logger, external: ext}
	cfg, hash, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cfg, f.cfgHash = cfg, hash
	f.metrics = newMetrics(o.Registerer)

	topts := tsdb.DefaultOptions()
	topts.RetentionDuration = o.Retention.Milliseconds()
	topts.MaxExemplars = o.MaxExemplars
	topts.EnableExemplarStorage = o.MaxExemplars > 0
	f.tenants = &tenancy{}
	f.budget = newSeriesBudget(o.Limits)
	f.budget.refused = f.metrics.seriesRefused
	f.budget.tenantMax, f.budget.tenantRefused = o.TenantMaxSeries, f.metrics.tenantSeriesRefused
	f.budget.tenants = f.tenants
	topts.SeriesLifecycleCallback = f.budget
	db, err := tsdb.Open(o.Dir, o.Logger.With("component", "tsdb"), o.Registerer, topts, tsdb.NewDBStats())
	if err != nil {
		return nil, fmt.Errorf("cannot open the metrics TSDB in %s: %w", o.Dir, err)
	}
	f.db = db
	f.budget.enforcing.Store(true) // after the write-ahead log's replay
	registerLimitMetrics(o.Registerer, f.budget)
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close())
		}
	}()
	if err := f.tenants.load(db); err != nil {
		return nil, err
	}

	f.remote = newRemoteStorage(f, o.Dir)
	f.fanout = storage.NewFanout(o.Logger, db, f.remote)
	f.push = newPushGuard(o.Limits, f.fanout, f.metrics)
	f.push.tenants = f.tenants

	f.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               o.Logger.With("component", "promql"),
		Reg:                  o.Registerer,
		MaxSamples:           o.MaxSamples,
		Timeout:              o.QueryTimeout,
		LookbackDelta:        o.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})

	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cannot register the service discovery metrics: %w", err)
	}
	var sctx context.Context
	sctx, f.scrapeC = context.WithCancel(context.Background())
	if f.sdLimit, err = newSDLimit(o.SDMaxBytes, o.Registerer); err != nil {
		return nil, fmt.Errorf("cannot register the service discovery limit: %w", err)
	}
	f.scrapeD = discovery.NewManager(sctx, o.Logger.With("component", "discovery", "of", "scrape"), o.Registerer, sdMetrics, discovery.Name("scrape"), f.sdLimit.option())
	if f.scrapeD == nil {
		return nil, errors.New("cannot create the scrape discovery manager")
	}
	f.scrapes, err = scrape.NewManager(&scrape.Options{DiscoveryReloadInterval: model.Duration(o.TargetReloadInterval)}, o.Logger.With("component", "scrape"),
		logging.NewJSONFileLogger, nil, f.fanout, o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cannot create the scrape manager: %w", err)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(newRefusedTargets(func() *scrape.Manager { return f.scrapes })); err != nil {
			return nil, fmt.Errorf("cannot register the refused scrape targets: %w", err)
		}
	}
	if err := f.newRules(sctx, sdMetrics); err != nil {
		return nil, err
	}
	if err := f.apply(cfg); err != nil {
		return nil, err
	}
	f.api = f.newAPI()
	return f, nil
}

// Appendable is where samples go in: the TSDB, and the remote-write
// queues of the configuration.
func (f *Federation) Appendable() storage.Appendable { return f.fanout }

// AppendableV2 is Appendable with Prometheus' newer appender interface.
func (f *Federation) AppendableV2() storage.AppendableV2 { return f.fanout }

// Queryable reads the TSDB as the tenant of each call's context
// (auth.Tenant): its series only, without TenantLabel.
func (f *Federation) Queryable() storage.Queryable { return f.tenants.queryable(f.db) }

// Engine is the PromQL engine the HTTP API and the rules use.
func (f *Federation) Engine() *promql.Engine { return f.engine }

// Config returns the configuration in effect.
func (f *Federation) Config() *config.Config {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cfg
}

// Run scrapes, evaluates rules and sends alerts until ctx ends, reloading
// the configuration file when it changes.
func (f *Federation) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f.scrapeD.Run(); err != nil && !errors.Is(err, context.Canceled) {
			f.logger.Error("scrape discovery stopped", "err", err)
		}
	})
	wg.Go(func() {
		if err := f.scrapes.Run(f.scrapeD.SyncCh()); err != nil {
			f.logger.Error("scrape manager stopped", "err", err)
		}
	})
	f.rules.run(&wg)
	if f.o.ReloadInterval > 0 && f.o.ConfigFile != "" {
		wg.Go(func() { f.watch(ctx) })
	}
	if f.o.TenantRetentions != nil {
		every := f.o.TenantRetentionInterval
		if every <= 0 {
			every = time.Hour
		}
		wg.Go(func() { f.tenantRetention(ctx, every) })
	}
	<-ctx.Done()
	f.scrapes.Stop()
	f.scrapeC()
	f.rules.stop()
	wg.Wait()
	return nil
}

// Close stops remote write (flushing what it can) and closes the TSDB.
func (f *Federation) Close() error {
	var err error
	if f.remote != nil {
		err = errors.Join(err, f.remote.Close())
		f.remote = nil
	}
	if f.db != nil {
		err = errors.Join(err, f.db.Close())
		f.db = nil
	}
	return err
}
