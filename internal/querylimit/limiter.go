// Package querylimit bounds the query path: how many queries run at once
// (the rest wait in a short queue, and past it are refused with 429 and
// Retry-After), how many bytes one query may read from a store, how long a
// time range it may cover and how many entries it may return. It is what
// keeps a storm of heavy queries from starving ingestion or running the
// process out of memory.
//
// The admission limits are kept per key: every query is admitted under
// DefaultKey today; a tenant id becomes the key once Vigil has tenants.
package querylimit

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultKey is the admission key of every query while Vigil is
// single-tenant.
const DefaultKey = "default"

// Options are the limits. A zero or negative value disables its limit.
type Options struct {
	// MaxConcurrent heavy queries run at once per key; MaxQueued more wait,
	// each at most QueueTimeout, for a slot.
	MaxConcurrent int
	MaxQueued     int
	QueueTimeout  time.Duration
	// MaxBytesScanned bounds the bytes one query reads from a store.
	MaxBytesScanned int64
	// MaxRange bounds the time range of one query.
	MaxRange time.Duration

	// Key returns the admission key of a request (a tenant id); nil or
	// "" admits it under DefaultKey.
	Key func(*http.Request) string

	Registerer prometheus.Registerer
}

// DefaultOptions are limits that keep ingestion going under a storm of
// heavy queries: one heavy LogQL query keeps a core busy, so half the cores
// (at least one) run queries and the rest are left to ingestion
// (docs/BENCHMARKS.md, "Query storm").
func DefaultOptions() Options {
	return Options{
		MaxConcurrent:   max(1, runtime.NumCPU()/2),
		MaxQueued:       16,
		QueueTimeout:    5 * time.Second,
		MaxBytesScanned: 1 << 30,
		MaxRange:        31 * 24 * time.Hour,
	}
}

// Refusal reasons, the reason label of vigil_query_limit_refused_total.
const (
	ReasonQueueFull    = "queue_full"    // MaxConcurrent running and MaxQueued waiting
	ReasonQueueTimeout = "queue_timeout" // waited QueueTimeout without a slot
	ReasonBytesScanned = "bytes_scanned" // the query read more than MaxBytesScanned
	ReasonRange        = "range"         // the query's range exceeds MaxRange
)

// Limiter admits queries. Its methods are safe for concurrent use.
type Limiter struct {
	o   Options
	m   *metrics
	mu  sync.Mutex
	per map[string]*pool
}

// pool is the slots and the queue of one key.
type pool struct {
	slots  chan struct{}
	queued int // guarded by Limiter.mu
}

// New returns a limiter enforcing o.
func New(o Options) *Limiter {
	return &Limiter{o: o, m: newMetrics(o.Registerer), per: map[string]*pool{}}
}

// Options returns the limits l enforces.
func (l *Limiter) Options() Options { return l.o }

// RefusedError is a query turned away before it ran, because too many were
// running and waiting. RetryAfter is when the client should try again.
type RefusedError struct {
	Reason     string
	Limit      string // the flag that sets the limit, for the message
	Value      string
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string {
	switch e.Reason {
	case ReasonQueueTimeout:
		return fmt.Sprintf("too many concurrent queries: waited %s (--query.queue-timeout) for one of the --query.max-concurrent=%s slots; retry later", e.Value, e.Limit)
	default:
		return fmt.Sprintf("too many concurrent queries: %s running and --query.max-queued=%s waiting; retry later", e.Limit, e.Value)
	}
}

// Acquire waits for a slot to run one heavy query under key and returns
// the function that gives it back. Past the queue it returns a
// *RefusedError; when ctx ends while it waits, ctx's error.
func (l *Limiter) Acquire(ctx context.Context, key string) (release func(), err error) {
	if l.o.MaxConcurrent <= 0 {
		l.m.admitted.Inc()
		l.m.inFlight.Inc()
		return l.m.inFlight.Dec, nil
	}
	p := l.pool(key)
	select {
	case p.slots <- struct{}{}:
		return l.admit(p), nil
	default:
	}
	l.mu.Lock()
	if p.queued >= max(l.o.MaxQueued, 0) {
		l.mu.Unlock()
		l.m.refused.WithLabelValues(ReasonQueueFull).Inc()
		return nil, &RefusedError{Reason: ReasonQueueFull, Limit: fmt.Sprint(l.o.MaxConcurrent), Value: fmt.Sprint(l.o.MaxQueued), RetryAfter: l.retryAfter()}
	}
	p.queued++
	l.mu.Unlock()
	l.m.queued.Inc()
	l.m.waiting.Inc()
	defer func() {
		l.mu.Lock()
		p.queued--
		l.mu.Unlock()
		l.m.waiting.Dec()
	}()
	var timeout <-chan time.Time
	if l.o.QueueTimeout > 0 {
		t := time.NewTimer(l.o.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p.slots <- struct{}{}:
		return l.admit(p), nil
	case <-timeout:
		l.m.refused.WithLabelValues(ReasonQueueTimeout).Inc()
		return nil, &RefusedError{Reason: ReasonQueueTimeout, Limit: fmt.Sprint(l.o.MaxConcurrent), Value: l.o.QueueTimeout.String(), RetryAfter: l.retryAfter()}
	case <-ctx.Done():
		l.m.abandoned.Inc()
		return nil, ctx.Err()
	}
}

func (l *Limiter) admit(p *pool) func() {
	l.m.admitted.Inc()
	l.m.inFlight.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			<-p.slots
			l.m.inFlight.Dec()
		})
	}
}

// retryAfter is the delay a refused client is told to wait: the queue
// timeout, at least a second.
func (l *Limiter) retryAfter() time.Duration {
	return max(l.o.QueueTimeout.Round(time.Second), time.Second)
}

func (l *Limiter) pool(key string) *pool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.per[key]
	if p == nil {
		p = &pool{slots: make(chan struct{}, l.o.MaxConcurrent)}
		l.per[key] = p
	}
	return p
}

type metrics struct {
	admitted, queued, abandoned prometheus.Counter
	inFlight, waiting           prometheus.Gauge
	refused                     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "query_limit", Name: name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "query_limit", Name: name, Help: help})
	}
	m := &metrics{
		admitted:  c("admitted_total", "Heavy queries admitted to run (at once or after waiting in the queue)."),
		queued:    c("queued_total", "Heavy queries that had to wait in the queue for a slot."),
		abandoned: c("abandoned_total", "Heavy queries whose client went away while they waited in the queue."),
		inFlight:  g("in_flight", "Heavy queries running now."),
		waiting:   g("queued", "Heavy queries waiting in the queue now."),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "query_limit", Name: "refused_total",
			Help: "Queries refused by a query limit, by reason: queue_full, queue_timeout (429); bytes_scanned (422); range (400)."}, []string{"reason"}),
	}
	for _, r := range []string{ReasonQueueFull, ReasonQueueTimeout, ReasonBytesScanned, ReasonRange} {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.admitted, m.queued, m.abandoned, m.inFlight, m.waiting, m.refused)
	}
	return m
}
