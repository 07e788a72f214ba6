package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

const (
	collectorSummary = "Receive logs (files, HTTP, OTLP) and spans (OTLP, Jaeger, Zipkin) and ship them to the queue."
	ingesterSummary  = "Consume the queue and write logs and spans to the stores."
	querySummary     = "Serve the query APIs (Loki, Jaeger) over the stores."
)

func clientID(role string) string {
	host, _ := os.Hostname()
	return "vigil-" + role + "-" + host
}

func runCollector(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("collector", collectorSummary+
		"\nWith --kafka.brokers, batches go to Kafka through a bounded disk spool under --data-dir that\n"+
		"absorbs Kafka outages. Without, the queue is the embedded disk queue under --data-dir,\n"+
		"consumed by a `vigil ingester` on the same --data-dir.")
	common := addCommonFlags(fs)
	cf := addCollectorFlags(fs)
	tf := addTraceFlags(fs)
	qf := addQueueFlags(fs)
	kf := addKafkaFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := common.logger()
	if err != nil {
		return err
	}
	d := newDaemon(logger)
	var producer queue.Producer
	var closers []io.Closer
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i].Close())
		}
	}()
	if kf.enabled() {
		ko, err := kf.options(clientID("collector"))
		if err != nil {
			return err
		}
		ko.Logger, ko.Registerer = logger.With("component", "kafka"), d.reg
		kp, err := kafka.NewProducer(ko)
		if err != nil {
			return err
		}
		closers = append(closers, kp)
		sp, err := d.openSpool(filepath.Join(*common.dataDir, "spool"), *qf.maxBytes, "spool", "logs", kp)
		if err != nil {
			return err
		}
		closers = append(closers, sp)
		d.add(sp.Run)
		producer = sp
	} else {
		qo := qf.options(*common.dataDir)
		qo.Logger, qo.Registerer = logger.With("component", "queue"), d.signalRegisterer("logs")
		p, err := diskqueue.OpenProducer(qo)
		if err != nil {
			return err
		}
		closers = append(closers, p)
		producer = p
	}
	col, ledger, err := d.newCollector(*common.dataDir, cf, producer)
	if err != nil {
		return err
	}
	closers = append(closers, ledger)
	mux := d.mux()
	col.RegisterHTTP(mux)
	sp, spClosers, err := d.openSpanProducer(*common.dataDir, qf, kf)
	closers = append(closers, spClosers...)
	if err != nil {
		return err
	}
	if err := d.openSpanReceivers(tf, *cf.maxBody, col, mux, sp); err != nil {
		return err
	}
	if _, err := d.listen("collector", *cf.listen, mux); err != nil {
		return err
	}
	d.add(col.Run)
	if err := d.run(ctx); err != nil {
		return fmt.Errorf("collector stopped: %w", err)
	}
	return nil
}

// logStore is what the ingester and query need of a store, and what the
// daemon runs and closes.
type logStore interface {
	ingester.Store
	queryStore
	Run(ctx context.Context) error
	Close() error
}

func runIngester(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("ingester", ingesterSummary+
		"\nWith --kafka.brokers it consumes Kafka in a consumer group; with --es.urls it writes to\n"+
		"Elasticsearch. Without them it consumes the embedded disk queue of a `vigil collector` on\n"+
		"the same --data-dir and writes the embedded store there.")
	common := addCommonFlags(fs)
	qf := addQueueFlags(fs)
	inf := addIngesterFlags(fs, true)
	sf := addStoreFlags(fs)
	qyf := addQueryFlags(fs)
	kf := addKafkaFlags(fs)
	ef := addESFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := common.logger()
	if err != nil {
		return err
	}
	d := newDaemon(logger)
	var closers []io.Closer
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i].Close())
		}
	}()

	var consumer queue.Consumer
	var dlq ingester.DeadLetter
	if kf.enabled() {
		ko, err := kf.options(clientID("ingester"))
		if err != nil {
			return err
		}
		ko.Logger, ko.Registerer = logger.With("component", "kafka"), d.reg
		if err := kafka.EnsureTopic(ctx, ko); err != nil {
			return err
		}
		c, err := kafka.NewConsumer(ko)
		if err != nil {
			return err
		}
		closers = append(closers, c)
		dp, err := kafka.NewDeadLetterProducer(ko, *kf.dlqTopic)
		if err != nil {
			return err
		}
		closers = append(closers, dp)
		consumer, dlq = c, dp
	} else {
		qo := qf.options(*common.dataDir)
		qo.Logger, qo.Registerer = logger.With("component", "queue"), d.signalRegisterer("logs")
		c, err := diskqueue.OpenConsumer(qo)
		if err != nil {
			return err
		}
		closers = append(closers, c)
		fd, err := ingester.NewFileDeadLetter(filepath.Join(*common.dataDir, "deadletter"))
		if err != nil {
			return err
		}
		consumer, dlq = c, fd
	}

	// The store hands records it rejects to the ingester, which is built
	// after it.
	var ing *ingester.Ingester
	reject := func(ctx context.Context, rec model.LogRecord, reason string) error {
		return ing.Reject(ctx, rec, reason)
	}
	store, err := d.openStore(ctx, *common.dataDir, sf, ef, reject)
	if err != nil {
		return err
	}
	closers = append(closers, store)
	o, err := inf.options()
	if err != nil {
		return err
	}
	o.Logger, o.Registerer = logger.With("component", "ingester"), d.reg
	ing = ingester.New(o, consumer, store, dlq)

	if _, err := d.listen("ingester", *inf.listen, d.mux()); err != nil {
		return err
	}
	sc, sdlq, scClosers, err := d.openSpanConsumer(ctx, *common.dataDir, qf, kf)
	closers = append(closers, scClosers...)
	if err != nil {
		return err
	}
	var spanIng *ingester.SpanIngester
	rejectSpan := func(ctx context.Context, s model.Span, reason string) error { return spanIng.Reject(ctx, s, reason) }
	spans, err := d.openSpanStore(ctx, *common.dataDir, sf, ef, rejectSpan)
	if err != nil {
		return err
	}
	closers = append(closers, spans)
	if spanIng, err = d.runSpanIngester(inf, sc, spans, sdlq); err != nil {
		return err
	}
	if *inf.queryListen != "" {
		mux := d.mux()
		d.registerJaeger(mux, spans)
		if err := d.serveQueryOn(mux, *inf.queryListen, qyf, store); err != nil {
			return err
		}
	}
	d.add(ing.Run)
	d.add(store.Run)
	d.add(spans.Run)
	if err := d.run(ctx); err != nil {
		return fmt.Errorf("ingester stopped: %w", err)
	}
	return nil
}

// openStore opens Elasticsearch when --es.urls is set, else the embedded
// store under dataDir.
func (d *daemon) openStore(ctx context.Context, dataDir string, sf *storeFlags, ef *esFlags,
	reject func(context.Context, model.LogRecord, string) error) (logStore, error) {
	if !ef.enabled() {
		return d.openLogStore(dataDir, sf)
	}
	eo := ef.options(time.Duration(sf.retention))
	eo.Logger, eo.Registerer = d.logger.With("component", "elasticsearch"), d.reg
	eo.Rejected = reject
	return esstore.Open(ctx, eo)
}

func runQuery(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("query", querySummary+
		"\nIt reads Elasticsearch (--es.urls). The embedded store is served by the process that writes it:\n"+
		"`vigil all-in-one`, or `vigil ingester --ingester.query-listen`.")
	common := addCommonFlags(fs)
	qyf := addQueryFlags(fs)
	ef := addESFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if !ef.enabled() {
		return errors.New("--es.urls is required: the standalone query daemon reads Elasticsearch; the embedded store is served by " +
			"the process that writes it (`vigil all-in-one`, or `vigil ingester --ingester.query-listen :16686`)")
	}
	logger, err := common.logger()
	if err != nil {
		return err
	}
	d := newDaemon(logger)
	eo := ef.options(0)
	eo.Logger, eo.Registerer = logger.With("component", "elasticsearch"), d.reg
	store, err := esstore.Open(ctx, eo)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	so := ef.spanOptions(0)
	so.Logger, so.Registerer = logger.With("component", "elasticsearch-spans"), d.reg
	spans, err := esspanstore.Open(ctx, so)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, spans.Close()) }()
	mux := d.mux()
	d.registerJaeger(mux, spans)
	if err := d.serveQueryOn(mux, *qyf.listen, qyf, store); err != nil {
		return err
	}
	if err := d.run(ctx); err != nil {
		return fmt.Errorf("query stopped: %w", err)
	}
	return nil
}
