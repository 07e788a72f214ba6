package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/query"
)

const (
	collectorSummary = "Receive logs from files and HTTP and ship them to the queue."
	ingesterSummary  = "Consume the queue and write logs to the store."
	querySummary     = "Serve the query APIs (Loki) over the store."
)

func runCollector(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("collector", collectorSummary+"\nWithout Kafka, the queue is the embedded disk queue under --data-dir, consumed by a `vigil ingester` on the same --data-dir.")
	common := addCommonFlags(fs)
	cf := addCollectorFlags(fs)
	qf := addQueueFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := common.logger()
	if err != nil {
		return err
	}
	d := newDaemon(logger)
	qo := qf.options(*common.dataDir)
	qo.Logger, qo.Registerer = logger.With("component", "queue"), d.reg
	p, err := diskqueue.OpenProducer(qo)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	co := cf.options(*common.dataDir)
	co.Logger, co.Registerer = logger.With("component", "collector"), d.reg
	col, err := collector.New(co, p)
	if err != nil {
		return err
	}
	mux := d.mux()
	col.RegisterHTTP(mux)
	if _, err := d.listen("collector", *cf.listen, mux); err != nil {
		return err
	}
	d.add(col.Run)
	if err := d.run(ctx); err != nil {
		return fmt.Errorf("collector stopped: %w", err)
	}
	return nil
}

func runIngester(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("ingester", ingesterSummary+"\nWithout Kafka, it consumes the embedded disk queue of a `vigil collector` on the same --data-dir and writes the embedded store there.")
	common := addCommonFlags(fs)
	qf := addQueueFlags(fs)
	inf := addIngesterFlags(fs, true)
	sf := addStoreFlags(fs)
	qyf := addQueryFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := common.logger()
	if err != nil {
		return err
	}
	d := newDaemon(logger)
	qo := qf.options(*common.dataDir)
	qo.Logger, qo.Registerer = logger.With("component", "queue"), d.reg
	c, err := diskqueue.OpenConsumer(qo)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	so := sf.options(*common.dataDir)
	so.Logger, so.Registerer = logger.With("component", "logstore"), d.reg
	store, err := logstore.Open(so)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	io, err := inf.options()
	if err != nil {
		return err
	}
	io.Logger, io.Registerer = logger.With("component", "ingester"), d.reg
	dlq, err := ingester.NewFileDeadLetter(*common.dataDir + "/deadletter")
	if err != nil {
		return err
	}
	ing := ingester.New(io, c, store, dlq)
	if _, err := d.listen("ingester", *inf.listen, d.mux()); err != nil {
		return err
	}
	if *inf.queryListen != "" {
		qyo := qyf.options()
		qyo.Logger, qyo.Registerer = logger.With("component", "query"), d.reg
		qmux := d.mux()
		query.NewAPI(qyo, store).RegisterHTTP(qmux)
		if _, err := d.listen("query", *inf.queryListen, qmux); err != nil {
			return err
		}
	}
	d.add(ing.Run)
	d.add(store.Run)
	if err := d.run(ctx); err != nil {
		return fmt.Errorf("ingester stopped: %w", err)
	}
	return nil
}

func runQuery(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("query", querySummary)
	addCommonFlags(fs)
	addQueryFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the standalone query daemon reads Elasticsearch, which this build does not support yet; " +
		"the embedded store is served by the process that writes it: run `vigil all-in-one`, or `vigil ingester --ingester.query-listen :16686`")
}
