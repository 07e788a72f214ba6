package main

import (
	"flag"
	"net/http"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/querylimit"
)

// queryLimitFlags bound the query path of every daemon that serves a query
// API: the query port, the profiler's port and the federation's.
type queryLimitFlags struct {
	maxConcurrent, maxQueued *int
	queueTimeout             *time.Duration
	maxBytesScanned          *int64
	maxRange                 config.Duration
}

func addQueryLimitFlags(fs *flag.FlagSet) *queryLimitFlags {
	d := querylimit.DefaultOptions()
	f := &queryLimitFlags{
		maxConcurrent:   fs.Int("query.max-concurrent", d.MaxConcurrent, "heavy queries (LogQL, trace searches, PromQL, profile merges, dump searches; see docs/security.md) that run at once, by default half the cores; 0 runs all at once"),
		maxQueued:       fs.Int("query.max-queued", d.MaxQueued, "heavy queries that wait for a slot past --query.max-concurrent; more are answered 429 with Retry-After"),
		queueTimeout:    fs.Duration("query.queue-timeout", d.QueueTimeout, "longest a heavy query waits for a slot; then it is answered 429 with Retry-After"),
		maxBytesScanned: fs.Int64("query.max-bytes-scanned", d.MaxBytesScanned, "bytes one query may read from the stores (log blocks, span blocks, profile samples, Elasticsearch responses); past it the query stops with 422; 0 is unlimited"),
		maxRange:        config.Duration(d.MaxRange),
	}
	fs.Var(&f.maxRange, "query.max-range", "longest time range of one query (31d, 12h); a longer one is answered 400; 0 is unlimited")
	return f
}

// limitQueries returns h behind the daemon's query limiter, built from f
// on first use: every port serving a query API shares it, so the limits
// bound the whole process.
func (d *daemon) limitQueries(f *queryLimitFlags, h http.Handler) http.Handler {
	if d.limiter == nil {
		o := querylimit.Options{
			MaxConcurrent: *f.maxConcurrent, MaxQueued: *f.maxQueued, QueueTimeout: *f.queueTimeout,
			MaxBytesScanned: *f.maxBytesScanned, MaxRange: time.Duration(f.maxRange),
			Registerer: d.reg,
		}
		d.limiter = querylimit.New(o)
	}
	return d.limiter.Handler(h)
}
