package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
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
	col, err := d.newCollector(*common.dataDir, cf, p)
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
	store, err := d.openLogStore(*common.dataDir, sf)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	ing, err := d.newIngester(*common.dataDir, inf, c, store)
	if err != nil {
		return err
	}
	if _, err := d.listen("ingester", *inf.listen, d.mux()); err != nil {
		return err
	}
	if *inf.queryListen != "" {
		if err := d.serveQuery(*inf.queryListen, qyf, store); err != nil {
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
