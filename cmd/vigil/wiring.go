package main

import (
	"errors"
	"net/http"
	"path/filepath"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/reconcile"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/query"
)

// The builders below are shared by all-in-one and the single-role commands,
// so that both run the same components configured the same way.

func (d *daemon) openLogStore(dataDir string, f *storeFlags) (*logstore.Store, error) {
	o := f.options(dataDir)
	o.Logger, o.Registerer = d.logger.With("component", "logstore"), d.reg
	return logstore.Open(o)
}

// newCollector builds a collector publishing to p, with its reconciliation
// ledger under dataDir; the caller closes the ledger after the daemon ran.
func (d *daemon) newCollector(dataDir string, f *collectorFlags, p queue.Producer) (*collector.Collector, *reconcile.Ledger, error) {
	ledger, err := reconcile.OpenLedger(filepath.Join(dataDir, "reconcile"))
	if err != nil {
		return nil, nil, err
	}
	d.add(ledger.Run)
	o := f.options(dataDir)
	o.Logger, o.Registerer = d.logger.With("component", "collector"), d.reg
	o.Ledger = ledger
	c, err := collector.New(o, p)
	if err != nil {
		return nil, nil, errors.Join(err, ledger.Close())
	}
	return c, ledger, nil
}

func (d *daemon) newIngester(dataDir string, f *ingesterFlags, c queue.Consumer, s storage.LogWriter) (*ingester.Ingester, error) {
	o, err := f.options()
	if err != nil {
		return nil, err
	}
	o.Logger, o.Registerer = d.logger.With("component", "ingester"), d.reg
	dlq, err := ingester.NewFileDeadLetter(dataDir + "/deadletter")
	if err != nil {
		return nil, err
	}
	return ingester.New(o, c, s, dlq), nil
}

// queryStore is a store the Loki API can read.
type queryStore = storage.LogReader

// serveQuery listens on addr with the Loki API over s.
func (d *daemon) serveQuery(addr string, f *queryFlags, s queryStore) error {
	return d.serveQueryOn(d.mux(), addr, f, s)
}

// serveQueryOn adds the Loki API over s to mux and listens on addr.
func (d *daemon) serveQueryOn(mux *http.ServeMux, addr string, f *queryFlags, s queryStore) error {
	o := f.options()
	o.Logger, o.Registerer = d.logger.With("component", "query"), d.reg
	query.NewAPI(o, s).RegisterHTTP(mux)
	_, err := d.listen("query", addr, mux)
	return err
}
