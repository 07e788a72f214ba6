package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/storage"
)

// Grouper assigns an event to its issue (package dumps implements it; the
// ingester does not know the grouping rules).
type Grouper interface {
	// Group returns the issue id of d and the title and culprit the issue
	// takes when d opens it. It must not keep d.
	Group(d *model.Dump) (issueID, title, culprit string)
}

// IssueNotifier is told about the issue changes the stored events caused
// (new issues, regressions), once per change, after the batch is stored.
// Notify must not block on the network: a webhook queues and delivers on
// its own goroutine.
type IssueNotifier interface {
	// Notify tells about changes of tenant's issues.
	Notify(tenant string, changes []storage.IssueChange)
}

// DumpIngester moves dump events (model.Dump as JSON, one per queue
// message: docs/format/dumps.md) from a queue consumer into a dump store:
// it groups each into its issue, writes them in batches, tells the
// notifier about new issues and regressions, and commits a queue position
// only after the store accepted every event before it. A message that is
// not a valid event is dead-lettered with the reason.
type DumpIngester struct {
	opts     Options
	consumer queue.Consumer
	store    storage.DumpWriter
	grouper  Grouper
	notifier IssueNotifier
	dlq      DeadLetter
	m        *signalMetrics
}

// DefaultMaxBatchDumps is the default bound of the events of one write: an
// event with all its goroutines can take hundreds of kilobytes.
const DefaultMaxBatchDumps = 256

// MaxEventIDBytes bounds an event id; Sentry's are 32 hex digits.
const MaxEventIDBytes = 64

// NewDumpIngester returns a dump ingester; opts.MaxBatchRecords bounds the
// events of one write (DefaultMaxBatchDumps suits one machine). notifier
// and dlq may be nil: without dlq an undecodable message stops the
// ingester with an error.
func NewDumpIngester(opts Options, c queue.Consumer, s storage.DumpWriter, g Grouper, n IssueNotifier, dlq DeadLetter) *DumpIngester {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &DumpIngester{opts: opts, consumer: c, store: s, grouper: g, notifier: n, dlq: dlq,
		m: newSignalMetrics(opts.Registerer, "dumps", "dump", "dump records")}
}

// Run consumes until ctx ends, draining the batch in hand (see pipeline).
func (in *DumpIngester) Run(ctx context.Context) error {
	p := &pipeline[storage.GroupedDump]{
		opts: in.opts, logger: in.opts.Logger, consumer: in.consumer, what: "dumps",
		decode: in.decode,
		deadLetter: func(ctx context.Context, m queue.Message, reason string) error {
			in.m.dead.Inc()
			if in.dlq == nil {
				return fmt.Errorf("dump record at position %d cannot be decoded and no dead-letter destination is configured: %s", m.Position, reason)
			}
			in.opts.Logger.Warn("dead-lettering an undecodable dump record", "position", m.Position, "key", m.Key, "reason", reason)
			return in.dlq.DeadLetter(ctx, m.Key, m.Value, reason)
		},
		write:    in.write,
		reject:   in.reject,
		consumed: in.m.consumed, written: in.m.written, writeErrors: in.m.failures,
	}
	return p.run(ctx)
}

// decode decodes and groups one queue record.
func (in *DumpIngester) decode(dst []storage.GroupedDump, value []byte) ([]storage.GroupedDump, error) {
	d, err := DecodeDump(value)
	if err != nil {
		return dst, err
	}
	id, title, culprit := in.grouper.Group(&d)
	d.IssueID = id
	return append(dst, storage.GroupedDump{Dump: d, Title: title, Culprit: culprit}), nil
}

// DecodeDump decodes one dumps queue record and checks what grouping and
// storing need: an event id (at most MaxEventIDBytes, no spaces or
// slashes), a service or a project, a timestamp. A service left empty
// takes the project; a timestamp left empty takes the received time.
func DecodeDump(value []byte) (model.Dump, error) {
	var d model.Dump
	if err := json.Unmarshal(value, &d); err != nil {
		return d, fmt.Errorf("not a dump event (JSON model.Dump): %w", err)
	}
	switch {
	case d.EventID == "":
		return d, errors.New(`field "event_id": missing`)
	case len(d.EventID) > MaxEventIDBytes || strings.ContainsAny(d.EventID, " /\\?#%\t\n"):
		return d, fmt.Errorf(`field "event_id": %.80q is not an event id (at most %d bytes, no spaces or slashes)`, d.EventID, MaxEventIDBytes)
	case d.Service == "" && d.Project == "":
		return d, errors.New(`fields "service" and "project": both missing`)
	case d.Timestamp <= 0 && d.Received <= 0:
		return d, errors.New(`fields "timestamp" and "received": both missing`)
	}
	if d.Service == "" {
		d.Service = d.Project
	}
	if d.Timestamp <= 0 {
		d.Timestamp = d.Received
	}
	d.IssueID = ""
	return d, nil
}

// write stores a batch and tells the notifier what the stored events did.
func (in *DumpIngester) write(ctx context.Context, batch []storage.GroupedDump) error {
	changes, err := in.store.WriteDumps(ctx, batch)
	if len(changes) > 0 && in.notifier != nil {
		in.notifier.Notify(auth.Tenant(ctx), changes)
	}
	return err
}

// reject dead-letters an event the store refused permanently, as its
// queue record with the store's reason.
func (in *DumpIngester) reject(ctx context.Context, g storage.GroupedDump, reason string) error {
	in.m.rejected.Inc()
	if in.dlq == nil {
		return fmt.Errorf("the dump store rejected event %s (%s) and no dead-letter destination is configured", g.Dump.EventID, reason)
	}
	g.Dump.IssueID = ""
	b, err := json.Marshal(&g.Dump)
	if err != nil {
		return err
	}
	in.opts.Logger.Warn("dead-lettering an event the store rejected", "event_id", g.Dump.EventID, "service", g.Dump.Service, "reason", reason)
	return in.dlq.DeadLetter(ctx, g.Dump.Project, b, reason)
}

// signalMetrics are the counters of an ingester of one signal.
type signalMetrics struct {
	consumed, written, failures, dead, rejected prometheus.Counter
}

// newSignalMetrics returns the counters vigil_ingester_consumed_<plural>_total,
// indexed_<plural>_total, <singular>_store_write_errors_total,
// dead_lettered_<batches>_total (with spaces as underscores) and
// dead_lettered_<plural>_total, registered with reg when it is not nil.
func newSignalMetrics(reg prometheus.Registerer, plural, singular, batches string) *signalMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingester", Name: name, Help: help})
	}
	m := &signalMetrics{
		consumed: c("consumed_"+plural+"_total", "Items of this signal ("+plural+") read from the queue."),
		written:  c("indexed_"+plural+"_total", "Items of this signal ("+plural+") durably accepted by the store."),
		failures: c(singular+"_store_write_errors_total", "Failed "+singular+" store writes; each is retried with backoff."),
		dead: c("dead_lettered_"+strings.ReplaceAll(batches, " ", "_")+"_total",
			"Undecodable "+batches+" sent to the dead-letter destination."),
		rejected: c("dead_lettered_"+plural+"_total",
			"Items of this signal ("+plural+") the store refused permanently, sent to the dead-letter destination with the store's reason."),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.written, m.failures, m.dead, m.rejected)
	}
	return m
}
