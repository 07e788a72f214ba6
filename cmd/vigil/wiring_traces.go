package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/collector/spool"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
	"github.com/vigilhq/vigil/internal/spanstore"
	"github.com/vigilhq/vigil/query/jaeger"
)

// The trace path: receivers → span queue → span ingester → span store ←
// Jaeger API. All-in-one runs all of it; the collector the receivers, the
// ingester the rest, the query daemon the API.

// Directories of the trace path under --data-dir.
const (
	spanQueueDir = "queue-spans"
	spanSpoolDir = "spool-spans"
	spanStoreDir = "spans"
	spanDLQDir   = "deadletter-spans"
)

// signalRegisterer labels the metrics of a component that exists once per
// signal (the disk queues and spools of logs and of spans) with signal="…".
func (d *daemon) signalRegisterer(signal string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"signal": signal}, d.reg)
}

// spanQueueOptions returns the options of the embedded span queue.
func (d *daemon) spanQueueOptions(dataDir string, qf *queueFlags) diskqueue.Options {
	qo := qf.options(dataDir)
	qo.Dir = filepath.Join(dataDir, spanQueueDir)
	qo.Logger, qo.Registerer = d.logger.With("component", "span-queue"), d.signalRegisterer("spans")
	return qo
}

// openSpool opens the collector's spool for one signal in dir, bounded to
// maxBytes, forwarding to down.
func (d *daemon) openSpool(dir string, maxBytes int64, component, signal string, down queue.Producer) (*spool.Spool, error) {
	logger, reg := d.logger.With("component", component), d.signalRegisterer(signal)
	q, err := diskqueue.Open(diskqueue.Options{Dir: dir, MaxBytes: maxBytes, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("cannot open spool: %w", err)
	}
	so := spool.DefaultOptions()
	so.Logger, so.Registerer = logger.With("dir", dir), reg
	return spool.Open(so, q, down)
}

// openSpanProducer returns where the collector's span receivers publish:
// with Kafka, a disk spool forwarding to the span topic; without, the
// embedded span queue under dataDir. Either way the receivers publish one
// batch per trace keyed by its trace id.
func (d *daemon) openSpanProducer(dataDir string, qf *queueFlags, kf *kafkaFlags) (queue.Producer, []io.Closer, error) {
	if !kf.enabled() {
		p, err := diskqueue.OpenProducer(d.spanQueueOptions(dataDir, qf))
		if err != nil {
			return nil, nil, err
		}
		return p, []io.Closer{p}, nil
	}
	ko, err := kf.spansOptions(clientID("collector"))
	if err != nil {
		return nil, nil, err
	}
	ko.Logger, ko.Registerer = d.logger.With("component", "kafka-spans"), d.reg
	kp, err := kafka.NewProducer(ko)
	if err != nil {
		return nil, nil, err
	}
	sp, err := d.openSpool(filepath.Join(dataDir, spanSpoolDir), *qf.maxBytes, "span-spool", "spans", kp)
	if err != nil {
		return nil, nil, errors.Join(err, kp.Close())
	}
	d.add(sp.Run)
	return sp, []io.Closer{kp, sp}, nil
}

// openSpanReceivers serves the trace receivers publishing to p: OTLP/HTTP
// on cmux (the collector's HTTP port), OTLP/gRPC (logs too, through col),
// Zipkin, Jaeger HTTP and Jaeger UDP on their own ports.
func (d *daemon) openSpanReceivers(tf *traceFlags, maxBody int64, col *collector.Collector, cmux *http.ServeMux, p queue.Producer) error {
	sampler, err := collector.NewSampler(*tf.sampleRate, *tf.serviceRates, d.reg)
	if err != nil {
		return fmt.Errorf("--collector.sampling.*: %w", err)
	}
	recv := collector.NewTraces(p, sampler, maxBody, d.logger.With("component", "traces"), d.reg)
	recv.RegisterOTLP(cmux)
	if *tf.zipkin != "" {
		mux := d.mux()
		recv.RegisterZipkin(mux)
		if _, err := d.listen("zipkin", *tf.zipkin, mux); err != nil {
			return err
		}
	}
	if *tf.jaegerHTTP != "" {
		mux := d.mux()
		recv.RegisterJaeger(mux)
		if _, err := d.listen("jaeger-http", *tf.jaegerHTTP, mux); err != nil {
			return err
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
			return fmt.Errorf("cannot listen on UDP %s for Jaeger: %w", u.addr, err)
		}
		d.add(func(ctx context.Context) error { return recv.ServeJaegerUDP(ctx, conn, u.compact) })
	}
	if *tf.otlpGRPC != "" {
		ln, err := net.Listen("tcp", *tf.otlpGRPC)
		if err != nil {
			return fmt.Errorf("cannot listen on %s for OTLP/gRPC: %w", *tf.otlpGRPC, err)
		}
		srv := collector.NewGRPCServer(col, recv, int(maxBody))
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
	return nil
}

// spanStore is what the span ingester writes, the Jaeger API reads and the
// daemon runs and closes: the embedded span store or Elasticsearch.
type spanStore interface {
	ingester.SpanStore
	jaeger.SpanReader
	Run(ctx context.Context) error
	Close() error
}

var (
	_ spanStore = (*spanstore.Store)(nil)
	_ spanStore = (*esspanstore.Store)(nil)
)

// openSpanStore opens Elasticsearch (Jaeger's layout) when --es.urls is
// set, else the embedded span store under dataDir. Spans Elasticsearch
// refuses go to reject.
func (d *daemon) openSpanStore(ctx context.Context, dataDir string, sf *storeFlags, ef *esFlags,
	reject func(context.Context, model.Span, string) error) (spanStore, error) {
	if ef != nil && ef.enabled() {
		eo := ef.spanOptions(time.Duration(sf.retention))
		eo.Logger, eo.Registerer = d.logger.With("component", "elasticsearch-spans"), d.reg
		eo.Rejected = reject
		return esspanstore.Open(ctx, eo)
	}
	so := spanstore.DefaultOptions(filepath.Join(dataDir, spanStoreDir))
	so.Retention = time.Duration(sf.retention)
	so.Logger, so.Registerer = d.logger.With("component", "spanstore"), d.reg
	return spanstore.Open(so)
}

// openSpanConsumer returns the span ingester's queue and dead-letter
// destination: the span topic and its dead-letter topic with Kafka, else
// the embedded span queue and a dead-letter directory under dataDir.
func (d *daemon) openSpanConsumer(ctx context.Context, dataDir string, qf *queueFlags, kf *kafkaFlags) (queue.Consumer, ingester.DeadLetter, []io.Closer, error) {
	if !kf.enabled() {
		c, err := diskqueue.OpenConsumer(d.spanQueueOptions(dataDir, qf))
		if err != nil {
			return nil, nil, nil, err
		}
		fd, err := ingester.NewFileDeadLetter(filepath.Join(dataDir, spanDLQDir))
		if err != nil {
			return nil, nil, nil, errors.Join(err, c.Close())
		}
		return c, fd, []io.Closer{c}, nil
	}
	ko, err := kf.spansOptions(clientID("ingester"))
	if err != nil {
		return nil, nil, nil, err
	}
	ko.Logger, ko.Registerer = d.logger.With("component", "kafka-spans"), d.reg
	if err := kafka.EnsureTopic(ctx, ko); err != nil {
		return nil, nil, nil, err
	}
	c, err := kafka.NewConsumer(ko)
	if err != nil {
		return nil, nil, nil, err
	}
	dp, err := kafka.NewDeadLetterProducer(ko, "")
	if err != nil {
		return nil, nil, nil, errors.Join(err, c.Close())
	}
	return c, dp, []io.Closer{c, dp}, nil
}

// runSpanIngester adds a span ingester from c to s.
func (d *daemon) runSpanIngester(inf *ingesterFlags, c queue.Consumer, s spanStore, dlq ingester.DeadLetter) (*ingester.SpanIngester, error) {
	o, err := inf.options()
	if err != nil {
		return nil, err
	}
	o.Logger, o.Registerer = d.logger.With("component", "span-ingester"), d.reg
	o.MaxBatchRecords = *inf.maxSpans
	in := ingester.NewSpanIngester(o, c, s, dlq)
	d.add(in.Run)
	return in, nil
}

// registerJaeger adds Jaeger's query API (and its v3) over s to mux.
func (d *daemon) registerJaeger(mux *http.ServeMux, s jaeger.SpanReader) {
	jo := jaeger.DefaultOptions()
	jo.Logger, jo.Registerer = d.logger.With("component", "jaeger-api"), d.reg
	api := jaeger.NewAPI(jo, s)
	api.RegisterHTTP(mux)
	api.RegisterV3(mux)
}

// traces is the all-in-one trace path.
type traces struct {
	queue *diskqueue.Queue
	store spanStore
}

// close closes the span queue and store.
func (t *traces) close() error { return errors.Join(t.queue.Close(), t.store.Close()) }

// openTraces builds the all-in-one trace path and registers its listeners
// and components on d; OTLP/HTTP traces are served on cmux, the Jaeger API
// on qmux. The caller closes the result after the daemon ran.
func (d *daemon) openTraces(ctx context.Context, dataDir string, tf *traceFlags, qf *queueFlags, inf *ingesterFlags, sf *storeFlags,
	maxBody int64, col *collector.Collector, cmux, qmux *http.ServeMux) (*traces, error) {
	q, err := diskqueue.Open(d.spanQueueOptions(dataDir, qf))
	if err != nil {
		return nil, err
	}
	store, err := d.openSpanStore(ctx, dataDir, sf, nil, nil)
	if err != nil {
		return nil, errors.Join(err, q.Close())
	}
	t := &traces{queue: q, store: store}
	fail := func(err error) (*traces, error) { return nil, errors.Join(err, t.close()) }
	if err := d.openSpanReceivers(tf, maxBody, col, cmux, q); err != nil {
		return fail(err)
	}
	dlq, err := ingester.NewFileDeadLetter(filepath.Join(dataDir, spanDLQDir))
	if err != nil {
		return fail(err)
	}
	if _, err := d.runSpanIngester(inf, q, store, dlq); err != nil {
		return fail(err)
	}
	d.add(store.Run)
	d.registerJaeger(qmux, store)
	return t, nil
}
