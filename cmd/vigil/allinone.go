package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

const allInOneSummary = "Run the collector, ingester and query in one process on embedded storage."

func runAllInOne(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("all-in-one", allInOneSummary+"\nThe queue and the log store live under --data-dir; nothing else is needed.")
	common := addCommonFlags(fs)
	cf := addCollectorFlags(fs)
	qf := addQueueFlags(fs)
	inf := addIngesterFlags(fs, false)
	sf := addStoreFlags(fs)
	qyf := addQueryFlags(fs)
	tf := addTraceFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := common.logger()
	if err != nil {
		return err
	}
	d := newDaemon(logger)

	qo := qf.options(*common.dataDir)
	qo.Logger, qo.Registerer = logger.With("component", "queue"), d.signalRegisterer("logs")
	q, err := diskqueue.Open(qo)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, q.Close()) }()

	store, err := d.openLogStore(*common.dataDir, sf)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	col, ledger, err := d.newCollector(*common.dataDir, cf, q)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ledger.Close()) }()
	ing, err := d.newIngester(*common.dataDir, inf, q, store)
	if err != nil {
		return err
	}
	cmux := d.mux()
	col.RegisterHTTP(cmux)
	qmux := d.mux()
	tr, err := d.openTraces(ctx, *common.dataDir, tf, qf, inf, sf, *cf.maxBody, col, cmux, qmux)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, tr.close()) }()
	if _, err := d.listen("collector", *cf.listen, cmux); err != nil {
		return err
	}
	if err := d.serveQueryOn(qmux, *qyf.listen, qyf, store); err != nil {
		return err
	}
	d.add(col.Run)
	d.add(ing.Run)
	d.add(store.Run)
	printURLs(*cf.listen, *qyf.listen)
	if err := d.run(ctx); err != nil {
		return fmt.Errorf("all-in-one stopped: %w", err)
	}
	logger.Info("stopped cleanly")
	return nil
}
