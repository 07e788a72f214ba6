package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/vigilhq/vigil/federation"
	"github.com/vigilhq/vigil/federation/golden"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/spanmetrics"
	"github.com/vigilhq/vigil/query/jaegermonitor"
)

const federationSummary = "Scrape Prometheus targets and leaf /federate endpoints into a TSDB; serve the Prometheus API, /federate, remote write, rules and alerts."

// federationFlags are the settings of the metrics federation (vigil
// federation and all-in-one).
type federationFlags struct {
	listen, config *string
	// golden and conventions: the generated golden-signal rules.
	golden       *bool
	conventions  *string
	retention    config.Duration
	reload       *time.Duration
	lookback     *time.Duration
	queryTimeout *time.Duration
	maxSamples   *int
	limits       limitFlags
}

// limitFlags are the federation's --federation.limits.*.
type limitFlags struct {
	maxSeries, maxSeriesPerService, maxPushSamples, maxInflight *int
	maxPushBytes, maxPushDecoded                                *int64
	serviceLabels                                               *string
	queueWait                                                   *time.Duration
}

func addFederationFlags(fs *flag.FlagSet) *federationFlags {
	d := federation.DefaultOptions()
	f := &federationFlags{
		listen:       fs.String("federation.listen", config.DefaultFederationAddr, "address of the federation's HTTP API: Prometheus' /api/v1/ (queries, remote write in), /federate, /metrics; empty disables the federation"),
		config:       fs.String("federation.config", "", "Prometheus configuration file: global, scrape_configs (static, file and HTTP service discovery), rule_files, remote_write, alerting; empty scrapes nothing"),
		reload:       fs.Duration("federation.config-check-interval", d.ReloadInterval, "how often --federation.config and its rule files are checked for changes, applied when they changed (SIGHUP reloads at once); 0 only on SIGHUP"),
		lookback:     fs.Duration("federation.lookback-delta", d.LookbackDelta, "how far back PromQL and /federate look for a series' latest sample"),
		queryTimeout: fs.Duration("federation.query-timeout", d.QueryTimeout, "longest a PromQL query may run"),
		maxSamples:   fs.Int("federation.query-max-samples", d.MaxSamples, "most samples one PromQL query may hold in memory at once; past it the query is answered 422"),
		golden:       fs.Bool("federation.golden-rules", true, "generate the golden-signal recording rules and SLO burn-rate alerts (as `vigil rules` does) under --data-dir/metrics-rules and evaluate them besides --federation.config's rule_files"),
		conventions:  fs.String("federation.golden-conventions", "", "YAML file of the golden rules' naming conventions, labels and SLO objectives (as `vigil rules --conventions`); empty covers the SDK's metrics and the span metrics"),
		retention:    config.Duration(d.Retention),
	}
	l := d.Limits
	f.limits = limitFlags{
		maxSeries:           fs.Int("federation.limits.max-series", l.MaxSeries, "active series (written in the last 2-3h) the TSDB may hold, from pushes, scrapes and rules; a new series past it is refused (pushes: partly accepted, the answer naming the limit); 0 for no limit"),
		maxSeriesPerService: fs.Int("federation.limits.max-series-per-service", l.MaxSeriesPerService, "active series one service (--federation.limits.service-labels) may hold; 0 for no limit"),
		maxPushBytes:        fs.Int64("federation.limits.max-push-bytes", l.MaxPushBytes, "largest remote-write or OTLP push body as sent (compressed), refused with 413 past it; 0 for no limit"),
		maxPushDecoded:      fs.Int64("federation.limits.max-push-decoded-bytes", l.MaxPushDecodedBytes, "largest push body decompressed, refused with 413 past it (Prometheus' receivers refuse over 32 MiB themselves); 0 for no limit"),
		maxPushSamples:      fs.Int("federation.limits.max-push-samples", l.MaxPushSamples, "most samples one push may carry (each bucket of an OTLP histogram counts), refused whole with 413 past it; 0 for no limit"),
		maxInflight:         fs.Int("federation.limits.max-inflight-pushes", l.MaxInflightPushes, "pushes decoded and stored at once; one more waits --federation.limits.push-queue-wait, then is refused with 429 and Retry-After; 0 for no limit"),
		queueWait:           fs.Duration("federation.limits.push-queue-wait", l.PushQueueWait, "how long a push waits for one of --federation.limits.max-inflight-pushes"),
		serviceLabels:       fs.String("federation.limits.service-labels", strings.Join(l.ServiceLabels, ","), "comma-separated labels naming a series' service for --federation.limits.max-series-per-service, the first present wins (OTLP's service.name becomes job)"),
	}
	fs.Var(&f.retention, "federation.retention", "how long the metrics TSDB (under --data-dir/metrics) keeps samples (15d, 2w, 36h)")
	return f
}

// goldenRules writes the golden-signal rule files under dataDir and
// returns their paths; none without --federation.golden-rules.
func (f *federationFlags) goldenRules(dataDir string) ([]string, error) {
	if !*f.golden {
		return nil, nil
	}
	c := golden.DefaultConfig()
	if *f.conventions != "" {
		var err error
		if c, err = golden.LoadConfig(*f.conventions); err != nil {
			return nil, fmt.Errorf("--federation.golden-conventions: %w", err)
		}
	}
	return golden.WriteDir(filepath.Join(dataDir, "metrics-rules"), golden.Generate(c))
}

func (f *federationFlags) options(dataDir string) federation.Options {
	o := federation.DefaultOptions()
	o.ConfigFile, o.Dir = *f.config, filepath.Join(dataDir, "metrics")
	o.Retention, o.ReloadInterval = time.Duration(f.retention), *f.reload
	o.LookbackDelta, o.QueryTimeout, o.MaxSamples = *f.lookback, *f.queryTimeout, *f.maxSamples
	o.Version = version
	lf := &f.limits
	o.Limits = federation.Limits{
		MaxSeries: *lf.maxSeries, MaxSeriesPerService: *lf.maxSeriesPerService, ServiceLabels: splitList(*lf.serviceLabels),
		MaxPushBytes: *lf.maxPushBytes, MaxPushDecodedBytes: *lf.maxPushDecoded, MaxPushSamples: *lf.maxPushSamples,
		MaxInflightPushes: *lf.maxInflight, PushQueueWait: *lf.queueWait,
	}
	host := *f.listen
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	o.ExternalURL = "http://" + host
	return o
}

func runFederation(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("federation", federationSummary+
		"\nThe TSDB lives under --data-dir/metrics. --federation.config takes Prometheus' own syntax.")
	common, ff, limits := addCommonFlags(fs), addFederationFlags(fs), addQueryLimitFlags(fs)
	d, err := parse(fs, args, common)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close()) }()
	if *ff.listen == "" {
		return errors.New("--federation.listen is empty: the federation role needs its HTTP port")
	}
	if _, err := d.startFederation(ff, *common.dataDir, limits); err != nil {
		return err
	}
	return d.runUntil(ctx, "federation")
}

// startFederation opens the federation's TSDB and configuration, binds its
// port, its queries bounded by limits, and runs it with the daemon; it
// returns nil when --federation.listen is empty. SIGHUP reloads its
// configuration.
func (d *daemon) startFederation(f *federationFlags, dataDir string, limits *queryLimitFlags) (*federation.Federation, error) {
	if *f.listen == "" {
		return nil, nil
	}
	o := f.options(dataDir)
	if d.tls != nil {
		// Alerts link back to the federation over the scheme it serves.
		o.ExternalURL = "https" + strings.TrimPrefix(o.ExternalURL, "http")
	}
	o.Logger, o.Registerer, o.Gatherer = d.logger.With("component", "federation"), d.reg, d.reg
	if a := d.auth; a != nil {
		// Each tenant's max_series, read from the file in effect.
		o.TenantMaxSeries = func(tenant string) int {
			l, _ := a.Limits(tenant)
			return l.MaxSeries
		}
		// Each tenant's retention, read from the file in effect at each
		// pass.
		o.TenantRetentions = func() map[string]time.Duration {
			out := map[string]time.Duration{}
			for id, t := range a.Config().Tenants {
				if t.Limits.Retention > 0 {
					out[id] = t.Limits.Retention
				}
			}
			return out
		}
	}
	var err error
	if o.RuleFiles, err = f.goldenRules(dataDir); err != nil {
		return nil, err
	}
	fed, err := federation.New(o)
	if err != nil {
		return nil, err
	}
	d.onClose(fed.Close)
	mux := d.mux()
	fed.RegisterHTTP(mux)
	if _, err := d.listen("federation", *f.listen, d.limitQueries(limits, mux)); err != nil {
		return nil, err
	}
	d.add(fed.Run)
	d.add(func(ctx context.Context) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				if err := fed.Reload(); err != nil {
					d.logger.Error("cannot reload --federation.config; the previous configuration stays in effect", "err", err)
				}
			}
		}
	})
	return fed, nil
}

// metricsFromSpans writes the golden signals the span ingester derives
// into the federation's TSDB (all-in-one: the process scrapes no /metrics
// of its own, which would store them twice) and serves Jaeger's
// monitoring API over them on mux, for the Jaeger UI's Monitor tab.
func (d *daemon) metricsFromSpans(fed *federation.Federation, agg *spanmetrics.Aggregator, mux *http.ServeMux) {
	if agg != nil {
		wo := spanmetrics.DefaultWriterOptions()
		wo.Logger, wo.Registerer = d.logger.With("component", "spanmetrics"), d.reg
		d.add(spanmetrics.NewWriter(wo, agg, fed.Appendable()).Run)
	}
	d.jaegerMonitor(fed.Engine(), fed.Queryable(), mux)
}

// jaegerMonitor serves Jaeger's monitoring API (the UI's Monitor tab) on
// mux from the span metrics that engine and q read.
func (d *daemon) jaegerMonitor(engine promql.QueryEngine, q storage.Queryable, mux *http.ServeMux) {
	mo := jaegermonitor.DefaultOptions()
	mo.Logger, mo.Registerer = d.logger.With("component", "jaeger-monitor"), d.reg
	jaegermonitor.New(mo, engine, q).RegisterHTTP(mux)
}

// addQueryMetricsURLFlag is vigil query's --query.metrics-url.
func addQueryMetricsURLFlag(fs *flag.FlagSet) *string {
	return fs.String("query.metrics-url", "", "base URL of a vigil federation (http://federation:9095) whose Prometheus API the query port serves under /api/v1/ (proxied) and whose span metrics (scraped from the ingesters) answer Jaeger's monitoring API /api/metrics/* (the UI's Monitor tab); empty serves neither")
}

// metricsFromFederation serves, on the standalone query daemon's mux, what
// all-in-one serves on its query port from its own federation: the
// Prometheus API and Jaeger's monitoring API, here read from the
// federation at base.
func (d *daemon) metricsFromFederation(base string, mux *http.ServeMux) error {
	r, err := federation.NewReader(federation.ReaderOptions{URL: base,
		Logger: d.logger.With("component", "federation-reader"), Registerer: d.reg})
	if err != nil {
		return fmt.Errorf("--query.metrics-url: %w", err)
	}
	r.RegisterHTTP(mux)
	d.jaegerMonitor(r.Engine(), r.Queryable(), mux)
	return nil
}

// splitList splits a comma-separated flag value, without empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
