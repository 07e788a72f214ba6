package querylimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
)

// ExceededError is a query stopped or refused because it went past one of
// its own limits: the bytes it scanned (422) or its time range (400). The message names the limit and its flag.
type ExceededError struct {
	Reason string // ReasonBytesScanned or ReasonRange
	Flag   string // the flag that sets the limit
	Limit  string // the limit, formatted
	Got    string // what the query needed, formatted
	// Tenant is set when the limit is the tenant's own (max_query_range
	// in --auth.config) rather than the flag's.
	Tenant string
}

func (e *ExceededError) Error() string {
	switch e.Reason {
	case ReasonBytesScanned:
		return fmt.Sprintf("query stopped: it scanned more than %s, the per-query budget (--%s); narrow its time range or its selector, or add a line filter", e.Limit, e.Flag)
	case ReasonRange:
		if e.Tenant != "" {
			return fmt.Sprintf("query time range %s exceeds the limit of %s of tenant %q (max_query_range in --auth.config); query a shorter range", e.Got, e.Limit, e.Tenant)
		}
		return fmt.Sprintf("query time range %s exceeds the limit of %s (--%s); query a shorter range", e.Got, e.Limit, e.Flag)
	}
	return fmt.Sprintf("query exceeds %s (--%s)", e.Limit, e.Flag)
}

// Status is the HTTP status of the error: 422 for a query stopped by its
// budget (a valid query, too heavy to run), 400 for a query that asks for
// a longer range than is allowed.
func (e *ExceededError) Status() int {
	if e.Reason == ReasonBytesScanned {
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

// StatusOf returns the HTTP status of a query-limit error in err's chain,
// and false when err is none.
func StatusOf(err error) (int, bool) {
	var re *RefusedError
	var ee *ExceededError
	switch {
	case errors.As(err, &re):
		return http.StatusTooManyRequests, true
	case errors.As(err, &ee):
		return ee.Status(), true
	}
	return 0, false
}

// query is what the limits know of one admitted query, carried by its
// context.
type query struct {
	o       *Options
	m       *metrics
	scanned atomic.Int64
	over    atomic.Bool
	// maxRange is the query's range limit; rangeOf names where it is set
	// (the key's, or "" for --query.max-range).
	maxRange time.Duration
	rangeOf  string
}

type ctxKey struct{}

// WithLimits returns a context carrying l's per-query limits for one
// query: a fresh bytes-scanned budget and the range limit.
func (l *Limiter) WithLimits(ctx context.Context) context.Context {
	return l.WithKeyLimits(ctx, DefaultKey)
}

// WithKeyLimits is WithLimits for a query under key: its range limit is
// the key's (Options.KeyMaxRange) when it has one.
func (l *Limiter) WithKeyLimits(ctx context.Context, key string) context.Context {
	q := &query{o: &l.o, m: l.m, maxRange: l.o.MaxRange}
	if l.o.KeyMaxRange != nil {
		if d := l.o.KeyMaxRange(key); d > 0 {
			q.maxRange, q.rangeOf = d, key
		}
	}
	return context.WithValue(ctx, ctxKey{}, q)
}

func fromContext(ctx context.Context) *query {
	q, _ := ctx.Value(ctxKey{}).(*query)
	return q
}

// Budget is the bytes-scanned budget of the query of a context, for a
// store's read loop to charge what it reads. Look it up once per query:
// Charge is a few atomic operations. The zero Budget (a context without
// limits) charges nothing.
type Budget struct{ q *query }

// BudgetOf returns the budget of ctx's query.
func BudgetOf(ctx context.Context) Budget { return Budget{fromContext(ctx)} }

// Charge adds n bytes read to the query's count and returns an
// *ExceededError once the count passes --query.max-bytes-scanned.
func (b Budget) Charge(n int) error {
	q := b.q
	if q == nil || q.o.MaxBytesScanned <= 0 {
		return nil
	}
	if q.scanned.Add(int64(n)) <= q.o.MaxBytesScanned {
		return nil
	}
	if q.over.CompareAndSwap(false, true) {
		q.m.refused.WithLabelValues(ReasonBytesScanned).Inc()
	}
	return &ExceededError{Reason: ReasonBytesScanned, Flag: "query.max-bytes-scanned", Limit: formatBytes(q.o.MaxBytesScanned)}
}

// Scanned returns the bytes charged so far.
func (b Budget) Scanned() int64 {
	if b.q == nil {
		return 0
	}
	return b.q.scanned.Load()
}

// CheckRange returns an *ExceededError when [start, end) is longer than
// the range limit of ctx's query: its tenant's max_query_range when set,
// else --query.max-range.
func CheckRange(ctx context.Context, start, end time.Time) error {
	q := fromContext(ctx)
	if q == nil || q.maxRange <= 0 || end.Sub(start) <= q.maxRange {
		return nil
	}
	q.m.refused.WithLabelValues(ReasonRange).Inc()
	e := &ExceededError{Reason: ReasonRange, Flag: "query.max-range", Limit: formatDuration(q.maxRange), Got: formatDuration(end.Sub(start))}
	if q.rangeOf != "" {
		e.Tenant = q.rangeOf
	}
	return e
}

// formatDuration writes d as the flags and the auth file take it: 30d,
// 12h, 1d2h.
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + model.Duration(-d).String()
	}
	return model.Duration(d).String()
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
