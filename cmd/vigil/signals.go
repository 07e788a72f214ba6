package main

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/patterns"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
	"github.com/vigilhq/vigil/internal/spanstore"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/query"
	"github.com/vigilhq/vigil/query/jaeger"
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
		receivers: func(q *collector.Queues, p queue.Producer) { q.Logs = p },
		topic: func(f *kafka.Flags, clientID string) (kafka.Options, string, error) {
			o, err := f.Options(clientID)
			return o, f.DeadLetterTopic(), err
		},
		embedded: func(d *daemon, dataDir string, retention time.Duration) (logStore, error) {
			o := logstore.Options{Dir: filepath.Join(dataDir, "logs"), Retention: retention}
			o.Logger, o.Registerer = d.logger.With("component", "logstore"), d.reg
			st, err := logstore.Open(o)
			if err != nil {
				return nil, err
			}
			return minePatterns(d, st), nil
		},
		elasticsearch: func(ctx context.Context, d *daemon, f *esFlags, retention time.Duration) (logStore, error) {
			o := f.options(retention)
			o.Logger, o.Registerer = d.logger.With("component", "elasticsearch"), d.reg
			st, err := esstore.Open(ctx, o)
			if err != nil {
				return nil, err
			}
			return minePatterns(d, st), nil
		},
		ingest: func(o ingester.Options, _ *ingesterFlags, c queue.Consumer, s logStore, dlq ingester.DeadLetter) runner {
			return ingester.New(o, c, s, dlq)
		},
		serve: func(d *daemon, mux *http.ServeMux, f *queryFlags, s logStore) {
			o := f.options()
			o.Logger, o.Registerer = d.logger.With("component", "query"), d.reg
			api := query.NewAPI(o, s)
			api.RegisterHTTP(mux)
			d.add(api.Run) // closes Live tails when the daemon stops
		},
	},
	&signalOf[spanStore]{
		name:     "spans",
		queueDir: "queue-spans", spoolDir: "spool-spans", deadLetterDir: "deadletter-spans",
		receivers: func(q *collector.Queues, p queue.Producer) { q.Spans = p },
		topic: func(f *kafka.Flags, clientID string) (kafka.Options, string, error) {
			o, err := f.SpansOptions(clientID)
			return o, "", err
		},
		embedded: func(d *daemon, dataDir string, retention time.Duration) (spanStore, error) {
			o := spanstore.DefaultOptions(filepath.Join(dataDir, "spans"))
			o.Retention = retention
			o.Logger, o.Registerer = d.logger.With("component", "spanstore"), d.reg
			return spanstore.Open(o)
		},
		elasticsearch: func(ctx context.Context, d *daemon, f *esFlags, retention time.Duration) (spanStore, error) {
			o := f.spanOptions(retention)
			o.Logger, o.Registerer = d.logger.With("component", "elasticsearch-spans"), d.reg
			return esspanstore.Open(ctx, o)
		},
		ingest: func(o ingester.Options, f *ingesterFlags, c queue.Consumer, s spanStore, dlq ingester.DeadLetter) runner {
			o.MaxBatchRecords = *f.maxSpans
			return ingester.NewSpanIngester(o, c, s, dlq)
		},
		serve: func(d *daemon, mux *http.ServeMux, _ *queryFlags, s spanStore) {
			o := jaeger.DefaultOptions()
			o.Logger, o.Registerer = d.logger.With("component", "jaeger-api"), d.reg
			api := jaeger.NewAPI(o, s)
			api.RegisterHTTP(mux)
			api.RegisterV3(mux)
		},
	},
}

// logStore and spanStore are what the ingester writes, the query API reads
// and the daemon runs and closes, in either mode.
type (
	logStore interface {
		storage.LogWriter
		storage.LogReader
		store
	}
	spanStore interface {
		storage.SpanWriter
		storage.SpanReader
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
func minePatterns(d *daemon, st patterns.Backend) *patterns.Store {
	o := patterns.DefaultOptions()
	o.Logger, o.Registerer = d.logger.With("component", "patterns"), d.reg
	return patterns.NewStore(st, o)
}

var (
	_ logStore  = (*patterns.Store)(nil)
	_ logStore  = (*logstore.Store)(nil)
	_ logStore  = (*esstore.Store)(nil)
	_ spanStore = (*spanstore.Store)(nil)
	_ spanStore = (*esspanstore.Store)(nil)
)

// signalOf is the declaration of a signal whose store is an S.
type signalOf[S store] struct {
	name string // the signal label of its queue and spool metrics
	// Directories under --data-dir: the embedded queue, the collector's
	// spool in front of Kafka, the ingester's dead letters without Kafka.
	queueDir, spoolDir, deadLetterDir string
	// receivers hands the collector the queue its receivers publish to.
	receivers func(q *collector.Queues, p queue.Producer)
	// topic returns the Kafka options of the signal's topic and its
	// dead-letter topic ("" derives it from the topic).
	topic         func(f *kafka.Flags, clientID string) (kafka.Options, string, error)
	embedded      func(d *daemon, dataDir string, retention time.Duration) (S, error)
	elasticsearch func(ctx context.Context, d *daemon, f *esFlags, retention time.Duration) (S, error)
	ingest        func(o ingester.Options, f *ingesterFlags, c queue.Consumer, s S, dlq ingester.DeadLetter) runner
	serve         func(d *daemon, mux *http.ServeMux, f *queryFlags, s S)
}

// signalPath is what the roles need of a declaration, whatever its store.
type signalPath interface {
	decl() *signalDecl
	// store opens the signal's store (Elasticsearch when b says so) and
	// closes it when the daemon ends; with a consumer it also ingests into
	// it, and with a mux it serves the query API over it.
	store(ctx context.Context, d *daemon, b *backends, in *ingestion, mux *http.ServeMux) error
}

// signalDecl is the part of a declaration that does not depend on the
// store's type.
type signalDecl struct {
	name                              string
	queueDir, spoolDir, deadLetterDir string
	receivers                         func(q *collector.Queues, p queue.Producer)
	topic                             func(f *kafka.Flags, clientID string) (kafka.Options, string, error)
}

func (s *signalOf[S]) decl() *signalDecl {
	return &signalDecl{s.name, s.queueDir, s.spoolDir, s.deadLetterDir, s.receivers, s.topic}
}

// ingestion is an ingester's queue side for one signal.
type ingestion struct {
	flags    *ingesterFlags
	consumer queue.Consumer
	dlq      ingester.DeadLetter
}

func (s *signalOf[S]) store(ctx context.Context, d *daemon, b *backends, in *ingestion, mux *http.ServeMux) error {
	var st S
	var err error
	if b.es.enabled() {
		st, err = s.elasticsearch(ctx, d, b.es, b.retention())
	} else {
		st, err = s.embedded(d, b.dataDir, b.retention())
	}
	if err != nil {
		return err
	}
	d.onClose(st.Close)
	if in != nil {
		o, err := in.flags.options()
		if err != nil {
			return err
		}
		o.Logger, o.Registerer = d.logger.With("component", "ingester", "signal", s.name), d.reg
		d.add(s.ingest(o, in.flags, in.consumer, st, in.dlq).Run)
		d.add(st.Run)
	}
	if mux != nil {
		s.serve(d, mux, b.query, st)
	}
	return nil
}
