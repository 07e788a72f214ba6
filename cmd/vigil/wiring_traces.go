package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/spanstore"
	"github.com/vigilhq/vigil/query/jaeger"
)

// traces is the all-in-one trace path: receivers → span queue → span
// ingester → span store ← Jaeger API.
type traces struct {
	queue *diskqueue.Queue
	store *spanstore.Store
	recv  *collector.Traces
}

// close closes the span queue and store.
func (t *traces) close() error { return errors.Join(t.queue.Close(), t.store.Close()) }

// openTraces builds the trace path and registers its listeners and
// components on d; OTLP/HTTP traces are served on cmux, the Jaeger API on
// qmux. The caller closes the result after the daemon ran.
func (d *daemon) openTraces(dataDir string, tf *traceFlags, qf *queueFlags, inf *ingesterFlags, sf *storeFlags,
	maxBody int64, col *collector.Collector, cmux, qmux *http.ServeMux) (*traces, error) {
	qo := qf.options(dataDir)
	qo.Dir = filepath.Join(dataDir, "queue-spans")
	qo.Logger, qo.Registerer = d.logger.With("component", "span-queue"), d.reg
	q, err := diskqueue.Open(qo)
	if err != nil {
		return nil, err
	}
	so := spanstore.DefaultOptions(filepath.Join(dataDir, "spans"))
	so.Retention = time.Duration(sf.retention)
	so.Logger, so.Registerer = d.logger.With("component", "spanstore"), d.reg
	store, err := spanstore.Open(so)
	if err != nil {
		return nil, errors.Join(err, q.Close())
	}
	t := &traces{queue: q, store: store}
	fail := func(err error) (*traces, error) { return nil, errors.Join(err, t.close()) }

	sampler, err := collector.NewSampler(*tf.sampleRate, *tf.serviceRates, d.reg)
	if err != nil {
		return fail(fmt.Errorf("--collector.sampling.*: %w", err))
	}
	t.recv = collector.NewTraces(q, sampler, maxBody, d.logger.With("component", "traces"), d.reg)
	t.recv.RegisterOTLP(cmux)
	if *tf.zipkin != "" {
		mux := d.mux()
		t.recv.RegisterZipkin(mux)
		if _, err := d.listen("zipkin", *tf.zipkin, mux); err != nil {
			return fail(err)
		}
	}
	if *tf.jaegerHTTP != "" {
		mux := d.mux()
		t.recv.RegisterJaeger(mux)
		if _, err := d.listen("jaeger-http", *tf.jaegerHTTP, mux); err != nil {
			return fail(err)
		}
	}
	for _, u := range []struct {
		addr    string
		compact bool
	}{{*tf.jaegerCompact, true}, {*tf.jaegerBinary, false}} {
		if u.addr == "" {
			continue
		}
		conn, err := net.ListenPacket("udp", u.addr)
		if err != nil {
			return fail(fmt.Errorf("cannot listen on UDP %s for Jaeger: %w", u.addr, err))
		}
		d.add(func(ctx context.Context) error { return t.recv.ServeJaegerUDP(ctx, conn, u.compact) })
	}
	if *tf.otlpGRPC != "" {
		ln, err := net.Listen("tcp", *tf.otlpGRPC)
		if err != nil {
			return fail(fmt.Errorf("cannot listen on %s for OTLP/gRPC: %w", *tf.otlpGRPC, err))
		}
		srv := collector.NewGRPCServer(col, t.recv, int(maxBody))
		d.add(func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("OTLP/gRPC server: %w", err)
			case <-ctx.Done():
				srv.GracefulStop()
				return nil
			}
		})
	}

	io, err := inf.options()
	if err != nil {
		return fail(err)
	}
	io.Logger, io.Registerer = d.logger.With("component", "span-ingester"), d.reg
	dlq, err := ingester.NewFileDeadLetter(filepath.Join(dataDir, "deadletter-spans"))
	if err != nil {
		return fail(err)
	}
	ing := ingester.NewSpanIngester(io, q, store, dlq)
	d.add(ing.Run)
	d.add(store.Run)

	jo := jaeger.DefaultOptions()
	jo.Logger, jo.Registerer = d.logger.With("component", "jaeger-api"), d.reg
	api := jaeger.NewAPI(jo, store)
	api.RegisterHTTP(qmux)
	api.RegisterV3(qmux)
	return t, nil
}
