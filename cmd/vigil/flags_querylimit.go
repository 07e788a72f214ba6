package main

import (
	"flag"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/querylimit"
)

// queryLimitFlags bound the query path of every daemon that serves a query
// API: the query port, the profiler's port and the federation's.
type queryLimitFlags struct {
	maxConcurrent, maxPerTenant, maxQueued *int
	queueTimeout                           *time.Duration
	maxBytesScanned                        *int64
	maxRange                               config.Duration
}

func addQueryLimitFlags(fs *flag.FlagSet) *queryLimitFlags {
	d := querylimit.DefaultOptions()
	f := &queryLimitFlags{
		maxConcurrent:   fs.Int("query.max-concurrent", d.MaxConcurrent, "heavy queries (LogQL, trace searches, PromQL, profile merges, dump searches; see docs/security.md) that run at once, by default half the cores; 0 runs all at once"),
		maxPerTenant:    fs.Int("query.max-concurrent-per-tenant", d.MaxConcurrentPerKey, "of the --query.max-concurrent slots, how many one tenant's heavy queries may hold at once; 0 is all of them (a free slot still goes first to the tenant running the fewest queries)"),
		maxQueued:       fs.Int("query.max-queued", d.MaxQueued, "heavy queries of one tenant that wait for a slot past --query.max-concurrent; more are answered 429 with Retry-After"),
		queueTimeout:    fs.Duration("query.queue-timeout", d.QueueTimeout, "longest a heavy query waits for a slot; then it is answered 429 with Retry-After"),
		maxBytesScanned: fs.Int64("query.max-bytes-scanned", d.MaxBytesScanned, "bytes one query may read from the stores (log blocks, span blocks, profile samples, Elasticsearch responses); past it the query stops with 422; 0 is unlimited"),
		maxRange:        config.Duration(d.MaxRange),
	}
	fs.Var(&f.maxRange, "query.max-range", "longest time range of one query (31d, 12h); a longer one is answered 400; 0 is unlimited. A tenant's max_query_range in --auth.config replaces it for the tenant's queries")
	return f
}

// limitQueries returns h behind the daemon's query limiter, built from f
// on first use: every port serving a query API shares it, so the limits
// bound the whole process. Queries are admitted per tenant (the tenant the
// port's auth guard, outside h, put in the request's context), and a
// tenant's max_query_range replaces --query.max-range for its queries,
// read from the auth file in effect at each query.
func (d *daemon) limitQueries(f *queryLimitFlags, h http.Handler) http.Handler {
	if d.limiter == nil {
		d.limiter = querylimit.New(queryLimitOptions(f, d.auth, d.reg))
	}
	return d.limiter.Handler(h)
}

// queryLimitOptions are the limiter's options from f, keyed by tenant, with
// the tenants' range limits of a (nil: auth off).
func queryLimitOptions(f *queryLimitFlags, a *auth.Authenticator, reg prometheus.Registerer) querylimit.Options {
	o := querylimit.Options{
		MaxConcurrent: *f.maxConcurrent, MaxConcurrentPerKey: *f.maxPerTenant, MaxQueued: *f.maxQueued,
		QueueTimeout: *f.queueTimeout, MaxBytesScanned: *f.maxBytesScanned, MaxRange: time.Duration(f.maxRange),
		Key:        func(r *http.Request) string { return auth.Tenant(r.Context()) },
		Registerer: reg,
	}
	if a != nil {
		o.KeyMaxRange = func(tenant string) time.Duration {
			l, _ := a.Limits(tenant)
			return l.MaxQueryRange
		}
	}
	return o
}
