package collector

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zeebo/xxh3"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
)

// LimitsOptions are the per-tenant ingestion limits: a token bucket of
// records (log lines, spans, Sentry events) per tenant and a cap on each
// tenant's active log streams. A tenant's own limits in --auth.config
// (TenantLimits) override these defaults field by field; zero everywhere
// limits nothing. See docs/security.md, "Limits".
type LimitsOptions struct {
	// IngestionRate is each tenant's sustained rate in records a second; 0
	// is unlimited. IngestionBurst is the bucket size (0: one second's).
	IngestionRate  float64
	IngestionBurst int
	// MaxStreams bounds each tenant's active log streams; 0 is unlimited.
	MaxStreams int
	// StreamWindow is how long a stream stays active after its last line
	// (0: one hour).
	StreamWindow time.Duration
	// Tenants, when set, gives each tenant's own limits (the
	// authenticator of --auth.config).
	Tenants TenantLimits
}

// TenantLimits is where the collector reads a tenant's limits;
// *auth.Authenticator is one.
type TenantLimits interface {
	Limits(tenant string) (auth.Limits, bool)
}

// DefaultStreamWindow is how long a log stream counts as active after its
// last line.
const DefaultStreamWindow = time.Hour

// Reasons of vigil_collector_limited_records_total.
const (
	reasonIngestionRate = "ingestion_rate"
	reasonMaxStreams    = "max_streams"
)

// tenantLimiter enforces LimitsOptions. Its memory is bounded: one bucket
// per tenant seen (tenants are the configured ones, or "default" without
// authentication) and at most max_streams 8-byte stream hashes, with
// their last-seen time, per tenant.
type tenantLimiter struct {
	opts LimitsOptions
	now  func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantState

	limited *prometheus.CounterVec // tenant, signal, reason
	streams *prometheus.GaugeVec   // tenant
}

type tenantState struct {
	mu sync.Mutex
	// tokens of the bucket at last; negative after a request larger than
	// the burst was admitted on a full bucket (it is paid back at the rate).
	tokens float64
	last   time.Time
	// active maps a stream's hash to when it was last seen (Unix ns).
	active    map[uint64]int64
	lastSweep time.Time
}

// limitError is a request refused by a tenant's limit.
type limitError struct {
	code       int // 429 for the rate, 400 for streams
	reason     string
	msg        string
	retryAfter time.Duration // 0: none (streams)
}

func (e *limitError) retryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.retryAfter.Seconds()))))
}

// setRetryAfter sets Retry-After of a refusal by the rate limit on o's
// response (gRPC: read by grpcError).
func (o *origin) setRetryAfter(e *limitError) {
	if o != nil && o.header != nil && e.retryAfter > 0 {
		o.header.Set("Retry-After", e.retryAfterSeconds())
	}
}

func newTenantLimiter(o LimitsOptions, reg prometheus.Registerer) (*tenantLimiter, error) {
	if o.IngestionRate < 0 || math.IsNaN(o.IngestionRate) || math.IsInf(o.IngestionRate, 0) {
		return nil, fmt.Errorf("--collector.limits.ingestion-rate %v: want records per second, 0 for unlimited", o.IngestionRate)
	}
	if o.IngestionBurst < 0 {
		return nil, fmt.Errorf("--collector.limits.ingestion-burst %d: want records, 0 for one second's rate", o.IngestionBurst)
	}
	if o.MaxStreams < 0 {
		return nil, fmt.Errorf("--collector.limits.max-streams %d: want a number of streams, 0 for unlimited", o.MaxStreams)
	}
	if o.StreamWindow < 0 {
		return nil, fmt.Errorf("--collector.limits.stream-window %v: want a duration, 0 for %v", o.StreamWindow, DefaultStreamWindow)
	}
	if o.StreamWindow == 0 {
		o.StreamWindow = DefaultStreamWindow
	}
	l := &tenantLimiter{opts: o, now: time.Now, tenants: map[string]*tenantState{},
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "limited_records_total",
			Help: "Records (log lines, spans, events) refused by a tenant's limit, by tenant, signal and reason (ingestion_rate: 429; max_streams: lines of new log streams past the limit, 400).",
		}, []string{"tenant", "signal", "reason"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "active_streams",
			Help: "Log streams tracked as active per tenant for max_streams (only tenants with a stream limit).",
		}, []string{"tenant"}),
	}
	if reg != nil {
		if err := reg.Register(l.limited); err != nil {
			return nil, err
		}
		if err := reg.Register(l.streams); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// effective is the limits in force for tenant, and where they come from
// (for the refusal's message).
type effective struct {
	rate              float64
	burst, maxStreams int
	fromConfig        bool // the tenant's own limits of --auth.config
}

func (l *tenantLimiter) limitsOf(tenant string) effective {
	e := effective{rate: l.opts.IngestionRate, burst: l.opts.IngestionBurst, maxStreams: l.opts.MaxStreams}
	if l.opts.Tenants != nil {
		if tl, ok := l.opts.Tenants.Limits(tenant); ok {
			if tl.IngestionRate > 0 {
				e.rate, e.fromConfig = tl.IngestionRate, true
			}
			if tl.IngestionBurst > 0 {
				e.burst, e.fromConfig = tl.IngestionBurst, true
			}
			if tl.MaxStreams > 0 {
				e.maxStreams, e.fromConfig = tl.MaxStreams, true
			}
		}
	}
	if e.rate > 0 && e.burst <= 0 {
		e.burst = max(1, int(math.Ceil(e.rate)))
	}
	return e
}

func (l *tenantLimiter) state(tenant string) *tenantState {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.tenants[tenant]
	if s == nil {
		s = &tenantState{tokens: math.NaN()}
		l.tenants[tenant] = s
	}
	return s
}

// allow takes n records of signal from the tenant of ctx's bucket. A
// request is refused whole (nothing of it queued, safe to resend) when the
// bucket holds fewer than min(n, burst) tokens: a request larger than the
// burst is admitted on a full bucket and leaves it in debt, so the rate
// holds over time. A nil limiter allows everything.
func (l *tenantLimiter) allow(ctx context.Context, signal string, n int) *limitError {
	if l == nil || n <= 0 {
		return nil
	}
	tenant := auth.Tenant(ctx)
	e := l.limitsOf(tenant)
	if e.rate <= 0 {
		return nil
	}
	s := l.state(tenant)
	now := l.now()
	need := float64(min(n, e.burst))
	s.mu.Lock()
	if math.IsNaN(s.tokens) {
		s.tokens, s.last = float64(e.burst), now
	}
	s.tokens = min(float64(e.burst), s.tokens+now.Sub(s.last).Seconds()*e.rate)
	s.last = now
	if s.tokens < need {
		wait := time.Duration((need - s.tokens) / e.rate * float64(time.Second))
		s.mu.Unlock()
		l.limited.WithLabelValues(tenant, signal, reasonIngestionRate).Add(float64(n))
		src := "--collector.limits.ingestion-rate, --collector.limits.ingestion-burst"
		if e.fromConfig {
			src = "limits.ingestion_rate, limits.ingestion_burst of the tenant in --auth.config"
		}
		return &limitError{code: http.StatusTooManyRequests, reason: "rate_limited", retryAfter: wait,
			msg: fmt.Sprintf("tenant %q is over its ingestion limit: ingestion_rate %g records per second, ingestion_burst %d (%s); %d records refused, none accepted; retry after the Retry-After delay", tenant, e.rate, e.burst, src, n)}
	}
	s.tokens -= float64(n)
	s.mu.Unlock()
	return nil
}

// admitStreams checks the streams of a request's log lines against the
// tenant's max_streams: hashes[i] is line i's stream. Lines of streams
// already active, or new while the tenant has room, are kept; the others
// are refused, and keep reports which (nil: all kept). A stream is active
// for StreamWindow after its last line.
func (l *tenantLimiter) admitStreams(ctx context.Context, hashes []uint64) (keep []bool, refused *limitError) {
	if l == nil || len(hashes) == 0 {
		return nil, nil
	}
	tenant := auth.Tenant(ctx)
	e := l.limitsOf(tenant)
	if e.maxStreams <= 0 {
		return nil, nil
	}
	s := l.state(tenant)
	now := l.now()
	ns := now.UnixNano()
	nRefused, newRefused := 0, 0
	var prev uint64
	prevOK := false
	s.mu.Lock()
	if s.active == nil {
		s.active = map[uint64]int64{}
	}
	for i, h := range hashes {
		if i > 0 && h == prev {
			if keep != nil {
				keep[i] = prevOK
			}
			if !prevOK {
				nRefused++
			}
			continue
		}
		prev = h
		prevOK = l.touch(s, h, ns, now, e.maxStreams)
		if !prevOK {
			if keep == nil {
				keep = make([]bool, len(hashes))
				for j := range i {
					keep[j] = true
				}
			}
			nRefused++
			newRefused++
		} else if keep != nil {
			keep[i] = true
		}
	}
	active := len(s.active)
	s.mu.Unlock()
	l.streams.WithLabelValues(tenant).Set(float64(active))
	if nRefused == 0 {
		return nil, nil
	}
	l.limited.WithLabelValues(tenant, "logs", reasonMaxStreams).Add(float64(nRefused))
	src := "--collector.limits.max-streams"
	if e.fromConfig {
		src = "limits.max_streams of the tenant in --auth.config"
	}
	return keep, &limitError{code: http.StatusBadRequest, reason: "stream_limit",
		msg: fmt.Sprintf("tenant %q has reached its limit of active log streams: max_streams %d (%s); %d lines of new streams refused, lines of active streams accepted; a stream (its env, grade, host, level, service and source) stays active %v after its last line: use fewer distinct label values",
			tenant, e.maxStreams, src, nRefused, l.opts.StreamWindow)}
}

// touch marks stream h seen at ns and reports whether it may be written:
// it is active, or new and the tenant has room (after dropping streams
// idle longer than the window, at most once a minute per tenant when
// full: a flood of new streams does not rescan the table on every line).
// s.mu is held.
func (l *tenantLimiter) touch(s *tenantState, h uint64, ns int64, now time.Time, maxStreams int) bool {
	if seen, ok := s.active[h]; ok && ns-seen <= int64(l.opts.StreamWindow) {
		s.active[h] = ns
		return true
	}
	if len(s.active) >= maxStreams && now.Sub(s.lastSweep) >= min(time.Minute, l.opts.StreamWindow) {
		s.lastSweep = now
		cutoff := ns - int64(l.opts.StreamWindow)
		for k, seen := range s.active {
			if seen < cutoff {
				delete(s.active, k)
			}
		}
	}
	if _, ok := s.active[h]; ok || len(s.active) < maxStreams {
		s.active[h] = ns
		return true
	}
	return false
}

// streamLimits reports whether max_streams can apply to the tenant of
// ctx, sparing the hashing of lines when it cannot.
func (l *tenantLimiter) streamLimits(ctx context.Context) bool {
	return l != nil && l.limitsOf(auth.Tenant(ctx)).maxStreams > 0
}

// streamHash is the hash of a log line's stream: its stream labels (env,
// grade, host, level, service, source; model.LogRecord.StreamLabels).
func streamHash(h *xxh3.Hasher, r *model.LogRecord) uint64 {
	h.Reset()
	for _, f := range [...]string{r.Env, r.Host, r.Level, r.Service, r.Source} {
		_, _ = h.WriteString(f)
		_, _ = h.Write([]byte{0xff})
	}
	_, _ = h.Write([]byte{byte(r.Grade)}) // #nosec G115 -- grades are 1 to 4, validated at intake; a hash input either way
	return h.Sum64()
}

// limitStreams drops from recs the lines refused by the tenant's
// max_streams, returning the lines kept and the refusal (nil: all kept).
func (l *tenantLimiter) limitStreams(ctx context.Context, recs []model.LogRecord) ([]model.LogRecord, *limitError) {
	if !l.streamLimits(ctx) {
		return recs, nil
	}
	hashes := make([]uint64, len(recs))
	h := xxh3.New()
	for i := range recs {
		if i > 0 && sameStream(&recs[i-1], &recs[i]) {
			hashes[i] = hashes[i-1]
			continue
		}
		hashes[i] = streamHash(h, &recs[i])
	}
	keep, refused := l.admitStreams(ctx, hashes)
	if refused == nil {
		return recs, nil
	}
	kept := recs[:0]
	for i := range recs {
		if keep[i] {
			kept = append(kept, recs[i])
		}
	}
	return kept, refused
}

func sameStream(a, b *model.LogRecord) bool {
	return a.Service == b.Service && a.Host == b.Host && a.Env == b.Env && a.Level == b.Level &&
		a.Source == b.Source && a.Grade == b.Grade
}
