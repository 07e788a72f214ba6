package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
	"github.com/vigilhq/vigil/internal/reconcile"
	"github.com/vigilhq/vigil/internal/tlsconfig"
	"github.com/vigilhq/vigil/profiler"
)

// The roles. Each builds, for every entry of signals, the part of the path
// it runs: all-in-one all of it on embedded storage; the collector the
// receivers and queues; the ingester the consumers, stores and (with
// --ingester.query-listen) the query API; the query daemon the APIs over
// Elasticsearch.

const (
	allInOneSummary  = "Run the collector, ingester and query in one process on embedded storage."
	collectorSummary = "Receive logs (files, HTTP, OTLP), spans (OTLP, Jaeger, Zipkin) and dumps (Sentry SDKs) and ship them to the queue; forward OTLP metrics to --collector.metrics-url."
	ingesterSummary  = "Consume the queue and write logs, spans and dumps to the stores."
	querySummary     = "Serve the query APIs (Loki, Jaeger, dumps and Sentry's) over the stores."
	profilerSummary  = "Scrape pprof endpoints and take Pyroscope pushes (/ingest, push.v1.PusherService/Push) and ship the profiles to the queue."
)

func runAllInOne(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("all-in-one", allInOneSummary+"\nThe queues and the stores live under --data-dir; nothing else is needed.")
	common, cf, qf := addCommonFlags(fs), addCollectorFlags(fs), addQueueFlags(fs)
	inf, sf, qyf, df := addIngesterFlags(fs, false), addStoreFlags(fs), addQueryFlags(fs), addDumpsFlags(fs)
	pf, ff := addProfilerFlags(fs), addFederationFlags(fs)
	d, err := parse(fs, args, common)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close()) }()
	b := &backends{dataDir: *common.dataDir, queue: qf, stores: sf, query: qyf, dumps: df}
	var queues producers
	qmux, err := d.queryMux()
	if err != nil {
		return err
	}
	// The profiler's port serves the profiles' query API too.
	var pmux *http.ServeMux
	if *pf.listen != "" {
		pmux = d.mux()
	}
	for _, sig := range signals {
		s := sig.decl()
		q, err := diskqueue.Open(d.diskQueueOptions(s, b))
		if err != nil {
			return err
		}
		d.onClose(q.Close)
		s.receivers(&queues, q)
		dlq, err := ingester.NewFileDeadLetter(filepath.Join(b.dataDir, s.deadLetterDir))
		if err != nil {
			return err
		}
		muxes := []*http.ServeMux{qmux}
		if s.intake == intakeProfiler {
			muxes = append(muxes, pmux)
		}
		if err := sig.store(ctx, d, b, &ingestion{flags: inf, consumer: q, dlq: dlq}, muxes...); err != nil {
			return err
		}
	}
	if cf.addrs.Dumps != "" && d.auth == nil {
		if err := cf.defaultDumpsKey(b.dataDir, d.logger); err != nil {
			return err
		}
	}
	// The federation first: the collector hands it the OTLP metrics.
	fed, err := d.startFederation(ff, b.dataDir, qyf.limits)
	if err != nil {
		return err
	}
	var metrics collector.MetricsDestination
	if fed != nil {
		// In-process, into the federation's own OTLP endpoint.
		fmux := http.NewServeMux()
		fed.RegisterHTTP(fmux)
		metrics = collector.MetricsHandler(fmux, "/api/v1/otlp/v1/metrics")
	}
	if err := d.startCollector(cf, b.dataDir, queues.Queues, metrics); err != nil {
		return err
	}
	if err := d.startProfiler(pf, queues.Profiles, pmux, qyf.limits); err != nil {
		return err
	}
	if fed != nil {
		fed.RegisterHTTP(qmux) // the Prometheus API on the query port too
		d.metricsFromSpans(fed, b.spanMetrics, qmux)
	}
	if _, err := d.listen("query", *qyf.listen, d.limitQueries(qyf.limits, qmux)); err != nil {
		return err
	}
	scheme, dsn := "http", cf.dumpsDSN()
	if d.tls != nil {
		scheme, dsn = "https", strings.Replace(dsn, "http://", "https://", 1)
	}
	printURLs(scheme, *cf.listen, *qyf.listen, dsn, *pf.listen, d.auth != nil)
	return d.runUntil(ctx, "all-in-one")
}

func runCollector(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("collector", collectorSummary+
		"\nWith --kafka.brokers, batches go to Kafka through a bounded disk spool under --data-dir that\n"+
		"absorbs Kafka outages. Without, the queue is the embedded disk queue under --data-dir,\n"+
		"consumed by a `vigil ingester` on the same --data-dir.")
	common, cf, qf, kf := addCommonFlags(fs), addCollectorFlags(fs), addQueueFlags(fs), kafka.RegisterFlags(fs)
	metricsURL := addMetricsURLFlag(fs)
	d, err := parse(fs, args, common)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close()) }()
	b := &backends{dataDir: *common.dataDir, queue: qf, kafka: kf}
	queues, err := d.producers(b, intakeCollector)
	if err != nil {
		return err
	}
	metrics, err := metricsForwarder(metricsURL)
	if err != nil {
		return err
	}
	if err := d.startCollector(cf, b.dataDir, queues.Queues, metrics); err != nil {
		return err
	}
	return d.runUntil(ctx, "collector")
}

func runProfiler(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("profiler", profilerSummary+
		"\nWith --kafka.brokers, profiles go to Kafka through a bounded disk spool under --data-dir.\n"+
		"Without, the queue is the embedded disk queue under --data-dir, consumed by a `vigil ingester`\n"+
		"on the same --data-dir. With --es.urls, its port also serves the profiles' query API\n"+
		"(Pyroscope's querier, the pprof API and web UI) over Elasticsearch.")
	common, pf, qf, kf := addCommonFlags(fs), addProfilerFlags(fs), addQueueFlags(fs), kafka.RegisterFlags(fs)
	ef, limits := addESFlags(fs), addQueryLimitFlags(fs)
	d, err := parse(fs, args, common)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close()) }()
	b := &backends{dataDir: *common.dataDir, queue: qf, kafka: kf, es: ef}
	queues, err := d.producers(b, intakeProfiler)
	if err != nil {
		return err
	}
	var pmux *http.ServeMux
	if ef.enabled() && *pf.listen != "" {
		pmux = d.mux()
		for _, sig := range signals {
			if sig.decl().intake != intakeProfiler {
				continue
			}
			if err := sig.store(ctx, d, b, nil, pmux); err != nil {
				return err
			}
		}
	}
	if err := d.startProfiler(pf, queues.Profiles, pmux, limits); err != nil {
		return err
	}
	return d.runUntil(ctx, "profiler")
}

// producers opens the producers of the signals an intake daemon receives.
func (d *daemon) producers(b *backends, intake string) (producers, error) {
	var queues producers
	for _, sig := range signals {
		s := sig.decl()
		if s.intake != intake {
			continue
		}
		p, err := d.producer(s, b)
		if err != nil {
			return queues, err
		}
		s.receivers(&queues, p)
	}
	return queues, nil
}

func runIngester(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("ingester", ingesterSummary+
		"\nWith --kafka.brokers it consumes Kafka in a consumer group; with --es.urls it writes to\n"+
		"Elasticsearch. Without them it consumes the embedded disk queue of a `vigil collector` on\n"+
		"the same --data-dir and writes the embedded store there.")
	common, qf, inf, sf := addCommonFlags(fs), addQueueFlags(fs), addIngesterFlags(fs, true), addStoreFlags(fs)
	qyf, kf, ef, df := addQueryFlags(fs), kafka.RegisterFlags(fs), addESFlags(fs), addDumpsFlags(fs)
	d, err := parse(fs, args, common)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close()) }()
	b := &backends{dataDir: *common.dataDir, queue: qf, kafka: kf, es: ef, stores: sf, query: qyf, dumps: df}
	if _, err := d.listen("ingester", *inf.listen, d.mux()); err != nil {
		return err
	}
	var qmux *http.ServeMux
	if *inf.queryListen != "" {
		if qmux, err = d.queryMux(); err != nil {
			return err
		}
	}
	for _, sig := range signals {
		c, dlq, err := d.consumer(ctx, sig.decl(), b)
		if err != nil {
			return err
		}
		if err := sig.store(ctx, d, b, &ingestion{flags: inf, consumer: c, dlq: dlq}, qmux); err != nil {
			return err
		}
	}
	if qmux != nil {
		if _, err := d.listen("query", *inf.queryListen, d.limitQueries(qyf.limits, qmux)); err != nil {
			return err
		}
	}
	return d.runUntil(ctx, "ingester")
}

func runQuery(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("query", querySummary+
		"\nIt reads Elasticsearch (--es.urls). The embedded store is served by the process that writes it:\n"+
		"`vigil all-in-one`, or `vigil ingester --ingester.query-listen`.")
	common, qyf, ef, df := addCommonFlags(fs), addQueryFlags(fs), addESFlags(fs), addDumpsFlags(fs)
	metricsURL := addQueryMetricsURLFlag(fs)
	d, err := parse(fs, args, common)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close()) }()
	if !ef.enabled() {
		return errors.New("--es.urls is required: the standalone query daemon reads Elasticsearch; the embedded store is served by " +
			"the process that writes it (`vigil all-in-one`, or `vigil ingester --ingester.query-listen :16686`)")
	}
	b := &backends{es: ef, query: qyf, dumps: df}
	mux, err := d.queryMux()
	if err != nil {
		return err
	}
	for _, sig := range signals {
		if err := sig.store(ctx, d, b, nil, mux); err != nil {
			return err
		}
	}
	if *metricsURL != "" {
		if err := d.metricsFromFederation(*metricsURL, mux); err != nil {
			return err
		}
	}
	if _, err := d.listen("query", *qyf.listen, d.limitQueries(qyf.limits, mux)); err != nil {
		return err
	}
	return d.runUntil(ctx, "query")
}

// metricsForwardTimeout bounds a forward to --collector.metrics-url; past
// it the client is answered 503 and retries.
const metricsForwardTimeout = 30 * time.Second

// metricsURLFlags are vigil collector's --collector.metrics-url and the
// TLS settings of its client.
type metricsURLFlags struct {
	url *string
	tls *tlsconfig.ClientFlags
}

func addMetricsURLFlag(fs *flag.FlagSet) *metricsURLFlags {
	return &metricsURLFlags{
		url: fs.String("collector.metrics-url", "", "OTLP/HTTP metrics endpoint (a federation's http://federation:9095/api/v1/otlp/v1/metrics) to which the OTLP metrics received on /v1/metrics and gRPC are forwarded, each answered with its answer; empty serves no OTLP metrics"),
		tls: tlsconfig.RegisterClientFlags(fs, "collector.metrics-url", "the federation of --collector.metrics-url"),
	}
}

// metricsForwarder is the metrics destination of --collector.metrics-url;
// nil when it is empty.
func metricsForwarder(f *metricsURLFlags) (collector.MetricsDestination, error) {
	u := *f.url
	if u == "" {
		return nil, nil
	}
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, fmt.Errorf("--collector.metrics-url %q: want an http(s) URL such as http://federation:9095/api/v1/otlp/v1/metrics", u)
	}
	tr, err := f.tls.Transport()
	if err != nil {
		return nil, fmt.Errorf("--collector.metrics-url: %w", err)
	}
	return collector.MetricsForwarder(u, &http.Client{Timeout: metricsForwardTimeout, Transport: tr}), nil
}

// startCollector builds the collector over queues and metrics (nil: no
// OTLP metrics), with its reconciliation ledger under dataDir, binds its listeners and runs it with the daemon.
func (d *daemon) startCollector(f *collectorFlags, dataDir string, queues collector.Queues, metrics collector.MetricsDestination) error {
	ledger, err := reconcile.OpenLedger(filepath.Join(dataDir, "reconcile"))
	if err != nil {
		return err
	}
	d.onClose(ledger.Close)
	d.add(ledger.Run)
	o := f.options(dataDir)
	o.Logger, o.Registerer = d.logger.With("component", "collector"), d.reg
	o.Ledger = ledger
	o.Ops = d.addOps
	o.Metrics = metrics
	o.TLS = d.tls
	if err := d.authCollector(&o); err != nil {
		return err
	}
	c, err := collector.New(o, queues)
	if err != nil {
		return err
	}
	if err := c.Listen(); err != nil {
		return err
	}
	d.onClose(c.Close)
	d.add(c.Run)
	return nil
}

// startProfiler builds the profiler publishing to q, binds its HTTP
// listener (unless --profiler.listen is empty) on mux, or a mux of its own
// when mux is nil, with the profiles' queries on it bounded by limits, and
// runs its scrapes with the daemon.
func (d *daemon) startProfiler(f *profilerFlags, q queue.Producer, mux *http.ServeMux, limits *queryLimitFlags) error {
	o, err := f.options()
	if err != nil {
		return err
	}
	o.Logger, o.Registerer = d.logger.With("component", "profiler"), d.reg
	p := profiler.New(o, q)
	if *f.listen != "" {
		if mux == nil {
			mux = d.mux()
		}
		p.RegisterHTTP(mux)
		if _, err := d.listen("profiler", *f.listen, d.limitQueries(limits, mux)); err != nil {
			return err
		}
	}
	d.add(p.Run)
	return nil
}

// runUntil runs the daemon until ctx ends or a component fails.
func (d *daemon) runUntil(ctx context.Context, role string) error {
	if err := d.run(ctx); err != nil {
		return fmt.Errorf("%s stopped: %w", role, err)
	}
	d.logger.Info("stopped cleanly")
	return nil
}
