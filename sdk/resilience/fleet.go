package resilience

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FleetConfig configures a FleetLimiter: a token bucket kept in Redis and
// shared by every instance of a service that uses the same Key.
type FleetConfig struct {
	// Addr is Redis' host:port; Key the bucket's key.
	Addr, Key string
	// Rate (tokens per second) and Burst are the fleet's whole budget.
	Rate  float64
	Burst int
	// Lease is how many tokens an instance takes from Redis at once and
	// then spends locally (default 1% of Burst, at least 1): one round
	// trip per Lease requests. Leased tokens unspent after LeaseTTL
	// (default 1s) are dropped, so an idle instance holds no budget.
	Lease    int
	LeaseTTL time.Duration
	// Timeout bounds one Redis call (default 50ms). When Redis cannot be
	// reached the limiter falls back to Local (when set) or allows.
	Timeout    time.Duration
	Local      *Limiter
	Name       string
	Registerer prometheus.Registerer
	Now        func() time.Time
	Dial       func(ctx context.Context, network, addr string) (net.Conn, error)
}

// fleetScript refills the bucket from Redis' own clock and takes up to
// ARGV[3] tokens; it returns the tokens granted.
const fleetScript = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000000) end
local granted = math.min(want, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return granted
`

// FleetLimiter is a fleet-wide token bucket in Redis, spent locally in
// leases.
type FleetLimiter struct {
	c      FleetConfig
	now    func() time.Time
	client *respClient

	mu      sync.Mutex // held across the Redis call: one lease request at a time
	leased  int
	expires int64
	// emptyUntil: Redis had no token; until the fleet's bucket has
	// refilled a lease, requests are rejected without asking it again
	emptyUntil int64

	allowed, rejected, fallback prometheus.Counter
	errs                        prometheus.Counter
}

// NewFleetLimiter returns a FleetLimiter; it connects on first use. Its
// metrics: vigil_resilience_fleet_requests_total{decision="allowed"|
// "rejected"|"fallback"} and vigil_resilience_fleet_redis_errors_total.
func NewFleetLimiter(c FleetConfig) (*FleetLimiter, error) {
	if c.Addr == "" || c.Key == "" {
		return nil, errors.New("FleetConfig.Addr and FleetConfig.Key: want Redis' host:port and the bucket's key")
	}
	if c.Rate <= 0 {
		return nil, fmt.Errorf("FleetConfig.Rate %v: want tokens per second above 0", c.Rate)
	}
	if c.Burst <= 0 {
		c.Burst = max(1, int(c.Rate))
	}
	if c.Lease <= 0 {
		c.Lease = max(1, c.Burst/100)
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 50 * time.Millisecond
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	in := newInstruments(c.Registerer, c.Name)
	v := in.counter("vigil_resilience_fleet_requests_total", "Requests asked of the fleet-wide budget, by decision: allowed, rejected, or fallback (Redis unreachable, decided locally).", "decision")
	f := &FleetLimiter{c: c, now: nowFunc(c.Now), client: &respClient{addr: c.Addr, dial: c.Dial},
		allowed: v.WithLabelValues("allowed"), rejected: v.WithLabelValues("rejected"), fallback: v.WithLabelValues("fallback"),
		errs: in.counter("vigil_resilience_fleet_redis_errors_total", "Redis calls of the fleet-wide budget that failed.").WithLabelValues(),
	}
	if in.err != nil {
		return nil, fmt.Errorf("FleetConfig.Registerer: cannot register the fleet limiter %q: %w", c.Name, in.err)
	}
	return f, nil
}

// take asks Redis for up to n tokens.
func (f *FleetLimiter) take(ctx context.Context, n int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, f.c.Timeout)
	defer cancel()
	v, err := f.client.do(ctx, "EVAL", fleetScript, "1", f.c.Key,
		strconv.FormatFloat(f.c.Rate, 'g', -1, 64), strconv.Itoa(f.c.Burst), strconv.Itoa(n))
	if err != nil {
		return 0, err
	}
	g, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("redis at %s: the budget script answered %T, want an integer", f.c.Addr, v)
	}
	return int(g), nil
}

// Allow takes one token of the fleet's budget: from the local lease, or
// a new lease from Redis. When Redis fails it decides with Local.
func (f *FleetLimiter) Allow(ctx context.Context) bool {
	now := f.now().UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	if now >= f.expires {
		f.leased = 0
	}
	if f.leased == 0 && now < f.emptyUntil {
		f.rejected.Inc()
		return false
	}
	if f.leased == 0 {
		n, err := f.take(ctx, f.c.Lease)
		if err != nil {
			f.errs.Inc()
			f.fallback.Inc()
			return f.c.Local == nil || f.c.Local.Allow()
		}
		f.leased, f.expires = n, now+int64(f.c.LeaseTTL)
		if n == 0 {
			f.emptyUntil = now + int64(float64(f.c.Lease)/f.c.Rate*1e9)
		}
	}
	if f.leased == 0 {
		f.rejected.Inc()
		return false
	}
	f.leased--
	f.allowed.Inc()
	return true
}

// Close closes the Redis connection.
func (f *FleetLimiter) Close() error { return f.client.close() }
