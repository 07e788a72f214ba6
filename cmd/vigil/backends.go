package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/collector/spool"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/queue/kafka"
	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// backends are the settings that choose where queues and stores live:
// Kafka when --kafka.brokers is set, else the embedded disk queue under
// the data directory; Elasticsearch when --es.urls is set, else the
// embedded stores. A role leaves out the groups it has no flags for.
type backends struct {
	dataDir string
	queue   *queueFlags
	kafka   *kafka.Flags
	es      *esFlags
	stores  *storeFlags
	query   *queryFlags
	dumps   *dumpsFlags // the dumps webhook and API settings
	// spanMetrics is the span ingester's aggregator of golden signals,
	// once it runs; all-in-one writes it into the federation's TSDB.
	spanMetrics *spanmetrics.Aggregator
}

func (b *backends) retention() time.Duration {
	if b.stores == nil {
		return 0
	}
	return time.Duration(b.stores.retention)
}

// diskQueueOptions returns the options of the signal's embedded queue.
func (d *daemon) diskQueueOptions(s *signalDecl, b *backends) diskqueue.Options {
	o := b.queue.options()
	o.Dir = filepath.Join(b.dataDir, s.queueDir)
	o.Logger, o.Registerer = d.logger.With("component", "queue", "signal", s.name), d.signalRegisterer(s.name)
	return o
}

// kafkaOptions returns the options of the signal's topic for a role.
func (d *daemon) kafkaOptions(s *signalDecl, b *backends, role string) (kafka.Options, string, error) {
	o, dlqTopic, err := s.topic(b.kafka, clientID(role))
	o.Logger, o.Registerer = d.logger.With("component", "kafka", "signal", s.name), d.reg
	return o, dlqTopic, err
}

// producer returns where the collector's receivers of a signal publish:
// with Kafka, a bounded disk spool forwarding to the signal's topic; else
// the embedded queue, consumed by an ingester on the same data directory.
func (d *daemon) producer(s *signalDecl, b *backends) (queue.Producer, error) {
	if !b.kafka.Enabled() {
		p, err := diskqueue.OpenProducer(d.diskQueueOptions(s, b))
		if err != nil {
			return nil, err
		}
		d.onClose(p.Close)
		return p, nil
	}
	ko, _, err := d.kafkaOptions(s, b, "collector")
	if err != nil {
		return nil, err
	}
	kp, err := kafka.NewProducer(ko)
	if err != nil {
		return nil, err
	}
	d.onClose(kp.Close)
	// The spool is a directory of disk queues of its own in front of
	// Kafka, one per grade; it closes them.
	qo := b.queue.options()
	qo.Dir = filepath.Join(b.dataDir, s.spoolDir)
	qo.Logger, qo.Registerer = d.logger.With("component", "spool", "signal", s.name), d.signalRegisterer(s.name)
	lanes, err := spool.OpenLanes(qo.Dir, func(dir string, grade int) (spool.Log, error) {
		o := qo
		o.Dir = dir
		if grade != spool.Grades {
			o.Registerer = nil // the grade-4 lane's vigil_queue_* stand for the spool
		}
		return diskqueue.Open(o)
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open spool: %w", err)
	}
	so := spool.DefaultOptions()
	if s.separateRecords {
		so.MaxCoalesce = 1
	}
	so.Logger, so.Registerer = qo.Logger, qo.Registerer
	// The breaker and retry window series are named like the other
	// resilience series of Vigil's own calls (name label only).
	so.Breaker.Name, so.RetryWindow.Name = "spool-"+s.name, "spool-"+s.name
	so.Breaker.Registerer, so.RetryWindow.Registerer = d.reg, d.reg
	sp, err := spool.Open(so, lanes, kp)
	if err != nil {
		return nil, err
	}
	d.onClose(sp.Close)
	d.add(sp.Run)
	return sp, nil
}

// consumer returns an ingester's queue of a signal and where it
// dead-letters: the signal's topic, in a consumer group, and its
// dead-letter topic with Kafka; else the embedded queue and a directory.
func (d *daemon) consumer(ctx context.Context, s *signalDecl, b *backends) (queue.Consumer, ingester.DeadLetter, error) {
	if !b.kafka.Enabled() {
		c, err := diskqueue.OpenConsumer(d.diskQueueOptions(s, b))
		if err != nil {
			return nil, nil, err
		}
		d.onClose(c.Close)
		dlq, err := ingester.NewFileDeadLetter(filepath.Join(b.dataDir, s.deadLetterDir))
		return c, dlq, err
	}
	ko, dlqTopic, err := d.kafkaOptions(s, b, "ingester")
	if err != nil {
		return nil, nil, err
	}
	if err := kafka.EnsureTopic(ctx, ko); err != nil {
		return nil, nil, err
	}
	c, err := kafka.NewConsumer(ko)
	if err != nil {
		return nil, nil, err
	}
	d.onClose(c.Close)
	dp, err := kafka.NewDeadLetterProducer(ko, dlqTopic)
	if err != nil {
		return nil, nil, err
	}
	d.onClose(dp.Close)
	return c, dp, nil
}
