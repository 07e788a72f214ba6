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

const allInOneSummary = "Run the collector, ingester and query in one process on embedded storage."

func runAllInOne(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("all-in-one", allInOneSummary+"\nThe queue and the log store live under --data-dir; nothing else is needed.")
	common := addCommonFlags(fs)
	cf := addCollectorFlags(fs)
	qf := addQueueFlags(fs)
	inf := addIngesterFlags(fs, false)
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
	q, err := diskqueue.Open(qo)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, q.Close()) }()

	so := sf.options(*common.dataDir)
	so.Logger, so.Registerer = logger.With("component", "logstore"), d.reg
	store, err := logstore.Open(so)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	co := cf.options(*common.dataDir)
	co.Logger, co.Registerer = logger.With("component", "collector"), d.reg
	col, err := collector.New(co, q)
	if err != nil {
		return err
	}
	io, err := inf.options()
	if err != nil {
		return err
	}
	io.Logger, io.Registerer = logger.With("component", "ingester"), d.reg
	dlq, err := ingester.NewFileDeadLetter(*common.dataDir + "/deadletter")
	if err != nil {
		return err
	}
	ing := ingester.New(io, q, store, dlq)

	qyo := qyf.options()
	qyo.Logger, qyo.Registerer = logger.With("component", "query"), d.reg
	api := query.NewAPI(qyo, store)

	cmux := d.mux()
	col.RegisterHTTP(cmux)
	if _, err := d.listen("collector", *cf.listen, cmux); err != nil {
		return err
	}
	qmux := d.mux()
	api.RegisterHTTP(qmux)
	if _, err := d.listen("query", *qyf.listen, qmux); err != nil {
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
