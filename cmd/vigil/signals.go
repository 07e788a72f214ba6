package main

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/dumps"
	dumpsapi "github.com/vigilhq/vigil/dumps/api"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/dumpstore"
	"github.com/vigilhq/vigil/internal/esdumpstore"
	"github.com/vigilhq/vigil/internal/esprofilestore"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/patterns"
	"github.com/vigilhq/vigil/internal/profilestore"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
	"github.com/vigilhq/vigil/internal/spanstore"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/query"
	"github.com/vigilhq/vigil/query/jaeger"
	"github.com/vigilhq/vigil/query/profiles"
)

// signals declares every signal once: its receivers (the collector's queue
// it feeds), its queue directories and Kafka topic, its store in both
// modes, its ingester and its query API. All-in-one and the single roles
// are built from this table; adding a signal is adding an entry (see
// docs/architecture.md, "Adding a signal").
var signals = []signalPath{
	&signalOf[logStore]{
		name:     "logs",
		queueDir: "queue", spoolDir: "spool", deadLetterDir: "deadletter",
		receivers: func(q *producers, p queue.Producer) { q.Logs = p },
		topic: func(f *kafka.Flags, clientID string) (kafka.Options, string, error) {
			o, err := f.Options(clientID)
			return o, f.DeadLetterTopic(), err
		},
		embedded: func(d *daemon, tenant, dataDir string, retention time.Duration) (logStore, error) {
			o := logstore.Options{Dir: filepath.Join(dataDir, "logs"), Retention: retention}
			o.Logger, o.Registerer = d.storeLogger("logstore", tenant), d.storeRegisterer(tenant)
			st, err := logstore.Open(o)
			if err != nil {
				return nil, err
			}
			return minePatterns(d, tenant, st), nil
		},
		elasticsearch: func(ctx context.Context, d *daemon, f *esFlags, tenant string, retention time.Duration) (logStore, error) {
			o := f.options(tenant, retention)
			o.Logger, o.Registerer = d.storeLogger("elasticsearch", tenant), d.storeRegisterer(tenant)
			st, err := esstore.Open(ctx, o)
			if err != nil {
				return nil, err
			}
			return minePatterns(d, tenant, st), nil
		},
		route: func(t *tenantStores[logStore]) logStore { return routedLogs{t} },
		ingest: func(_ *daemon, _ *backends, o ingester.Options, in *ingestion, s logStore) (runner, error) {
			return ingester.New(o, in.consumer, s, in.dlq), nil
		},
		serve: func(d *daemon, b *backends, s logStore) func(*http.ServeMux) {
			o := b.query.options()
			o.Logger, o.Registerer = d.logger.With("component", "query"), d.reg
			api := query.NewAPI(o, s)
			d.add(api.Run) // closes Live tails when the daemon stops
			return api.RegisterHTTP
		},
	},
	&signalOf[spanStore]{
		name:     "spans",
		queueDir: "queue-spans", spoolDir: "spool-spans", deadLetterDir: "deadletter-spans",
		receivers: func(q *producers, p queue.Producer) { q.Spans = p },
		topic: func(f *kafka.Flags, clientID string) (kafka.Options, string, error) {
			o, err := f.SpansOptions(clientID)
			return o, "", err
		},
		embedded: func(d *daemon, tenant, dataDir string, retention time.Duration) (spanStore, error) {
			o := spanstore.DefaultOptions(filepath.Join(dataDir, "spans"))
			o.Retention = retention
			o.Logger, o.Registerer = d.storeLogger("spanstore", tenant), d.storeRegisterer(tenant)
			return spanstore.Open(o)
		},
		elasticsearch: func(ctx context.Context, d *daemon, f *esFlags, tenant string, retention time.Duration) (spanStore, error) {
			o := f.spanOptions(tenant, retention)
			o.Logger, o.Registerer = d.storeLogger("elasticsearch-spans", tenant), d.storeRegisterer(tenant)
			return esspanstore.Open(ctx, o)
		},
		route: func(t *tenantStores[spanStore]) spanStore { return routedSpans{t} },
		ingest: func(d *daemon, b *backends, o ingester.Options, in *ingestion, s spanStore) (runner, error) {
			o.MaxBatchRecords = *in.flags.maxSpans
			if d.auth != nil {
				// A tenant's max_series bounds its span-derived series
				// too, within the ingester's cap.
				o.SpanMetrics.TenantMaxSeries = func(tenant string) int {
					l, _ := d.auth.Limits(tenant)
					return l.MaxSeries
				}
			}
			si := ingester.NewSpanIngester(o, in.consumer, s, in.dlq)
			b.spanMetrics = si.SpanMetrics()
			return si, nil
		},
		serve: func(d *daemon, _ *backends, s spanStore) func(*http.ServeMux) {
			o := jaeger.DefaultOptions()
			o.Logger, o.Registerer = d.logger.With("component", "jaeger-api"), d.reg
			api := jaeger.NewAPI(o, s)
			return func(mux *http.ServeMux) {
				api.RegisterHTTP(mux)
				api.RegisterV3(mux)
			}
		},
	},
	&signalOf[dumpStore]{
		name:     "dumps",
		queueDir: "queue-dumps", spoolDir: "spool-dumps", deadLetterDir: "deadletter-dumps",
		// One JSON event per record: two concatenated are no record.
		separateRecords: true,
		receivers:       func(q *producers, p queue.Producer) { q.Dumps = p },
		topic: func(f *kafka.Flags, clientID string) (kafka.Options, string, error) {
			return f.DumpsOptions(clientID)
		},
		embedded: func(d *daemon, tenant, dataDir string, retention time.Duration) (dumpStore, error) {
			o := dumpstore.DefaultOptions(filepath.Join(dataDir, "dumps"))
			o.RetentionDays = dumpstore.RetentionDays(retention)
			o.Logger, o.Registerer = d.storeLogger("dumpstore", tenant), d.storeRegisterer(tenant)
			return dumpstore.Open(o)
		},
		elasticsearch: func(ctx context.Context, d *daemon, f *esFlags, tenant string, retention time.Duration) (dumpStore, error) {
			o := f.dumpOptions(tenant, retention)
			o.Logger, o.Registerer = d.storeLogger("elasticsearch-dumps", tenant), d.storeRegisterer(tenant)
			return esdumpstore.Open(ctx, o)
		},
		route: func(t *tenantStores[dumpStore]) dumpStore { return routedDumps{t} },
		ingest: func(d *daemon, b *backends, o ingester.Options, in *ingestion, s dumpStore) (runner, error) {
			o.MaxBatchRecords = ingester.DefaultMaxBatchDumps
			// The webhook delivers on its own goroutine, run and stopped
			// with the daemon; without one nothing is notified.
			var n ingester.IssueNotifier
			w, err := b.dumps.webhook(d.auth, d.logger.With("component", "dumps-webhook"), d.reg)
			if err != nil {
				return nil, err
			}
			if w != nil {
				d.add(w.Run)
				n = w
			}
			return ingester.NewDumpIngester(o, in.consumer, s, dumps.IssueGrouper{}, n, in.dlq), nil
		},
		serve: func(d *daemon, b *backends, s dumpStore) func(*http.ServeMux) {
			o := b.dumps.apiOptions()
			if d.auth != nil && len(o.Tokens) > 0 {
				d.logger.Warn("--dumps.tokens is ignored with --auth.config: the Sentry web API takes the tenants' read keys")
				o.Tokens = nil
			}
			o.Logger, o.Registerer = d.logger.With("component", "dumps-api"), d.reg
			return dumpsapi.New(o, s).RegisterHTTP
		},
	},
	&signalOf[profileStore]{
		name:     "profiles",
		queueDir: model.ProfileQueueDir, spoolDir: "spool-profiles", deadLetterDir: "deadletter-profiles",
		// One binary profile per record.
		separateRecords: true,
		// Received by the profiler (scrapes, POST /ingest), not the
		// collector.
		intake:    intakeProfiler,
		receivers: func(q *producers, p queue.Producer) { q.Profiles = p },
		topic: func(f *kafka.Flags, clientID string) (kafka.Options, string, error) {
			return f.ProfilesOptions(clientID)
		},
		embedded: func(d *daemon, tenant, dataDir string, retention time.Duration) (profileStore, error) {
			o := profilestore.DefaultOptions(filepath.Join(dataDir, "profiles"))
			o.Retention = retention
			o.Logger, o.Registerer = d.storeLogger("profilestore", tenant), d.storeRegisterer(tenant)
			return profilestore.Open(o)
		},
		elasticsearch: func(ctx context.Context, d *daemon, f *esFlags, tenant string, retention time.Duration) (profileStore, error) {
			o := f.profileOptions(tenant, retention)
			o.Logger, o.Registerer = d.storeLogger("elasticsearch-profiles", tenant), d.storeRegisterer(tenant)
			return esprofilestore.Open(ctx, o)
		},
		route: func(t *tenantStores[profileStore]) profileStore { return routedProfiles{t} },
		ingest: func(_ *daemon, _ *backends, o ingester.Options, in *ingestion, s profileStore) (runner, error) {
			o.MaxBatchRecords = ingester.DefaultMaxBatchProfiles
			return ingester.NewProfileIngester(o, in.consumer, s, in.dlq), nil
		},
		// Pyroscope's querier, the pprof API and pprof's web UI, on the
		// query port and the profiler's.
		serve: func(d *daemon, _ *backends, s profileStore) func(*http.ServeMux) {
			return profiles.New(profiles.Options{Logger: d.logger.With("component", "profiles-api"), Registerer: d.reg}, s).RegisterHTTP
		},
	},
}

// logStore, spanStore and dumpStore are what the ingester writes, the
// query API reads (and, for dumps, changes) and the daemon runs and closes,
// in either mode.
type (
	logStore interface {
		storage.LogWriter
		storage.LogReader
		storage.StreamStatsReader
		storage.PatternReader
		store
	}
	spanStore interface {
		storage.SpanWriter
		storage.SpanReader
		storage.DependencyReader
		store
	}
	dumpStore interface {
		storage.DumpWriter
		dumpsapi.Store
		store
	}
	profileStore interface {
		storage.ProfileWriter
		storage.ProfileReader
		store
	}
	store interface {
		Run(ctx context.Context) error
		Close() error
	}
	runner interface {
		Run(ctx context.Context) error
	}
)

// minePatterns mines the log patterns of every line written to st and
// keeps them in st (internal/patterns), for /loki/api/v1/patterns.
func minePatterns(d *daemon, tenant string, st patterns.Backend) *patterns.Store {
	o := patterns.DefaultOptions()
	o.Logger, o.Registerer = d.storeLogger("patterns", tenant), d.storeRegisterer(tenant)
	return patterns.NewStore(st, o)
}

var (
	_ logStore  = (*patterns.Store)(nil)
	_ logStore  = (*logstore.Store)(nil)
	_ logStore  = (*esstore.Store)(nil)
	_ spanStore = (*spanstore.Store)(nil)
	_ spanStore = (*esspanstore.Store)(nil)
	_ dumpStore = (*dumpstore.Store)(nil)
	_ dumpStore = (*esdumpstore.Store)(nil)

	_ profileStore = (*profilestore.Store)(nil)
	_ profileStore = (*esprofilestore.Store)(nil)
)

// Intakes: which daemon receives a signal.
const (
	intakeCollector = "" // vigil collector
	intakeProfiler  = "profiler"
)

// producers are the queues the receivers of every signal publish to: the
// collector's and the profiler's.
type producers struct {
	collector.Queues
	Profiles queue.Producer
}

// signalOf is the declaration of a signal whose store is an S.
type signalOf[S store] struct {
	name string // the signal label of its queue and spool metrics
	// Directories under --data-dir: the embedded queue, the collector's
	// spool in front of Kafka, the ingester's dead letters without Kafka.
	queueDir, spoolDir, deadLetterDir string
	// separateRecords says the signal's records cannot be concatenated
	// into one (they are not OTLP export requests), so the spool in front
	// of Kafka forwards each as a message of its own.
	separateRecords bool
	// intake is the daemon whose receivers feed the signal: the collector
	// (intakeCollector) or the profiler (intakeProfiler).
	intake string
	// receivers hands the receivers the queue they publish to.
	receivers func(q *producers, p queue.Producer)
	// topic returns the Kafka options of the signal's topic and its
	// dead-letter topic ("" derives it from the topic).
	topic func(f *kafka.Flags, clientID string) (kafka.Options, string, error)
	// embedded opens the signal's store of all-in-one and of an ingester
	// without --es.urls; elasticsearch its store with --es.urls. Every
	// signal has both.
	// Both open the store of one tenant (see tenants.go), the embedded one
	// in dataDir.
	embedded      func(d *daemon, tenant, dataDir string, retention time.Duration) (S, error)
	elasticsearch func(ctx context.Context, d *daemon, f *esFlags, tenant string, retention time.Duration) (S, error)
	// route returns the store that sends each call to the store of the
	// tenant of its context.
	route func(*tenantStores[S]) S
	// ingest returns the ingester of the signal into s; it may add what
	// the ingester needs besides (a webhook) to the daemon.
	ingest func(d *daemon, b *backends, o ingester.Options, in *ingestion, s S) (runner, error)
	// serve builds the signal's query API over s and returns what
	// registers it on a mux (the query port's, and the intake's where it
	// serves the API too); nil serves none.
	serve func(d *daemon, b *backends, s S) func(*http.ServeMux)
}

// signalPath is what the roles need of a declaration, whatever its store.
type signalPath interface {
	decl() *signalDecl
	// store opens the signal's store (Elasticsearch when b says so) and
	// closes it when the daemon ends; with a consumer it also ingests into
	// it, and it serves the query API over it on each mux that is not nil.
	store(ctx context.Context, d *daemon, b *backends, in *ingestion, muxes ...*http.ServeMux) error
}

// signalDecl is the part of a declaration that does not depend on the
// store's type.
type signalDecl struct {
	name                              string
	queueDir, spoolDir, deadLetterDir string
	separateRecords                   bool
	intake                            string
	receivers                         func(q *producers, p queue.Producer)
	topic                             func(f *kafka.Flags, clientID string) (kafka.Options, string, error)
}

func (s *signalOf[S]) decl() *signalDecl {
	return &signalDecl{s.name, s.queueDir, s.spoolDir, s.deadLetterDir, s.separateRecords, s.intake, s.receivers, s.topic}
}

// ingestion is an ingester's queue side for one signal.
type ingestion struct {
	flags    *ingesterFlags
	consumer queue.Consumer
	dlq      ingester.DeadLetter
}

// tenants returns the signal's stores, one per tenant (tenants.go), in
// Elasticsearch when b says so.
func (s *signalOf[S]) tenants(d *daemon, b *backends) *tenantStores[S] {
	retention := func(tenant string) time.Duration { return d.tenantRetention(b, tenant) }
	return newTenantStores(s.name, retention, func(ctx context.Context, tenant string, retention time.Duration) (S, error) {
		if b.es.enabled() {
			return s.elasticsearch(ctx, d, b.es, tenant, retention)
		}
		return s.embedded(d, tenant, tenantDataDir(b.dataDir, tenant), retention)
	}, d.logger.With("component", "stores"))
}

func (s *signalOf[S]) store(ctx context.Context, d *daemon, b *backends, in *ingestion, muxes ...*http.ServeMux) error {
	ts := s.tenants(d, b)
	d.onClose(ts.Close)
	// The default tenant's store opens now, so that a store that cannot
	// open stops the daemon at start, as it always did.
	if _, err := ts.of(ctx, auth.DefaultTenant); err != nil {
		return err
	}
	st := s.route(ts)
	if in != nil {
		o, err := in.flags.options()
		if err != nil {
			return err
		}
		o.Logger, o.Registerer = d.logger.With("component", "ingester", "signal", s.name), d.reg
		r, err := s.ingest(d, b, o, in, st)
		if err != nil {
			return err
		}
		d.add(r.Run)
		d.add(ts.Run)
		// The daemon that runs the stores applies their retention, and
		// applies a tenant's new one when --auth.config changes.
		if d.auth != nil {
			d.auth.OnReload(ts.retentionChanged)
		}
	}
	muxes = slices.DeleteFunc(muxes, func(m *http.ServeMux) bool { return m == nil })
	if len(muxes) > 0 && s.serve != nil {
		register := s.serve(d, b, st)
		for _, m := range muxes {
			register(m)
		}
	}
	return nil
}
