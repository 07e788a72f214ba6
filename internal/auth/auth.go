package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configures an Authenticator.
type Options struct {
	// File is the --auth.config file.
	File string
	// CheckInterval is how often File is checked for changes; 0 never.
	CheckInterval time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// DefaultOptions checks the file every two seconds.
func DefaultOptions(file string) Options {
	return Options{File: file, CheckInterval: 2 * time.Second}
}

// Authenticator answers who a credential belongs to and what it may do,
// from the configuration last read successfully. A nil *Authenticator is
// auth off: every request is DefaultTenant with every scope. It is safe
// for concurrent use; Reload swaps the configuration atomically, so a
// request is judged by the old or the new one, never a mix.
type Authenticator struct {
	opts     Options
	cur      atomic.Pointer[table]
	mu       sync.Mutex // guards stamp, onReload and the reads of the file
	stamp    fileStamp
	onReload []func()
	metrics  *metrics
}

// table is a Config indexed for lookups.
type table struct {
	cfg *Config
	// keys and dsn bucket keys by the first 8 bytes of their hash; the
	// full hash is then compared in constant time.
	keys, dsn map[uint64][]*key
}

func newTable(c *Config) *table {
	t := &table{cfg: c, keys: map[uint64][]*key{}, dsn: map[uint64][]*key{}}
	for _, k := range c.keys {
		p := prefix(k.sum)
		t.keys[p] = append(t.keys[p], k)
	}
	for _, k := range c.dsn {
		p := prefix(k.sum)
		t.dsn[p] = append(t.dsn[p], k)
	}
	return t
}

func prefix(sum [sha256.Size]byte) uint64 { return binary.BigEndian.Uint64(sum[:8]) }

// find returns the key whose hash is sum, comparing every candidate in
// full with subtle.ConstantTimeCompare. Only the hash of the presented
// key reaches the map; how long the lookup takes depends on that hash,
// which tells an attacker nothing about the stored keys.
func find(m map[uint64][]*key, sum [sha256.Size]byte) *key {
	var found *key
	for _, k := range m[prefix(sum)] {
		if subtle.ConstantTimeCompare(k.sum[:], sum[:]) == 1 {
			found = k
		}
	}
	return found
}

// New reads o.File and returns its Authenticator; Run then reloads it on
// change.
func New(o Options) (*Authenticator, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{opts: o, metrics: newMetrics(o.Registerer)}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// fileStamp tells whether a file changed since it was last read.
type fileStamp struct {
	mod  time.Time
	size int64
	sum  [sha256.Size]byte
}

// Reload reads the file again. A file that does not parse leaves the
// configuration in effect unchanged, and is reported in the logs and in
// vigil_auth_config_last_reload_successful.
func (a *Authenticator) Reload() error {
	a.mu.Lock()
	err := a.reload()
	hooks := a.onReload
	a.mu.Unlock()
	if err != nil {
		a.metrics.reloads.WithLabelValues("failure").Inc()
		a.metrics.lastOK.Set(0)
		return err
	}
	a.metrics.reloads.WithLabelValues("success").Inc()
	a.metrics.lastOK.Set(1)
	a.metrics.lastTime.SetToCurrentTime()
	for _, f := range hooks {
		f()
	}
	return nil
}

// OnReload has f called after every successful reload, with the new
// configuration in effect (Limits answers from it). f runs on the
// reloading goroutine, so it only starts what takes time.
func (a *Authenticator) OnReload(f func()) {
	a.mu.Lock()
	a.onReload = append(a.onReload, f)
	a.mu.Unlock()
}

func (a *Authenticator) reload() error {
	st, err := os.Stat(a.opts.File)
	if err != nil {
		return fmt.Errorf("--auth.config: %w", err)
	}
	b, err := os.ReadFile(a.opts.File)
	if err != nil {
		return fmt.Errorf("--auth.config: %w", err)
	}
	a.stamp = fileStamp{mod: st.ModTime(), size: st.Size(), sum: sha256.Sum256(b)}
	c, err := ParseConfig(a.opts.File, b)
	if err != nil {
		return err
	}
	a.cur.Store(newTable(c))
	nkeys := len(c.keys) + len(c.dsn)
	a.metrics.tenants.Set(float64(len(c.Tenants)))
	a.metrics.keys.Set(float64(nkeys))
	a.opts.Logger.Info("auth configuration loaded", "file", a.opts.File, "tenants", len(c.Tenants), "keys", nkeys)
	return nil
}

// changed tells whether the file differs from the one last read.
func (a *Authenticator) changed() bool {
	st, err := os.Stat(a.opts.File)
	if err != nil {
		return true // reported by the reload
	}
	if !st.ModTime().Equal(a.stamp.mod) || st.Size() != a.stamp.size {
		return true
	}
	// Same mtime and size: an edit within the file system's timestamp
	// granularity still changes the content.
	b, err := os.ReadFile(a.opts.File)
	return err != nil || sha256.Sum256(b) != a.stamp.sum
}

// Run reloads the file when it changes, until ctx ends.
func (a *Authenticator) Run(ctx context.Context) error {
	if a.opts.CheckInterval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.opts.CheckInterval)
	defer t.Stop()
	var failed fileStamp
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		a.mu.Lock()
		skip := !a.changed() || (a.stamp == failed && failed != fileStamp{})
		a.mu.Unlock()
		if skip {
			continue
		}
		if err := a.Reload(); err != nil {
			a.mu.Lock()
			failed = a.stamp
			a.mu.Unlock()
			if err.Error() != lastErr { // a file gone stays gone: say so once
				a.opts.Logger.Error("cannot reload --auth.config; the previous configuration stays in effect", "err", err)
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
	}
}

// Config returns the configuration in effect.
func (a *Authenticator) Config() *Config { return a.cur.Load().cfg }

// DumpsWebhookURL returns the URL of tenant's own dumps webhook, "" when
// it has none.
func (a *Authenticator) DumpsWebhookURL(tenant string) string {
	if a == nil {
		return ""
	}
	if t := a.cur.Load().cfg.Tenants[tenant]; t != nil {
		return t.DumpsWebhookURL
	}
	return ""
}

// Limits returns the limits of tenant, and whether it is configured.
func (a *Authenticator) Limits(tenant string) (Limits, bool) {
	if a == nil {
		return Limits{}, false
	}
	t := a.cur.Load().cfg.Tenants[tenant]
	if t == nil {
		return Limits{}, false
	}
	return t.Limits, true
}

// Identity is who a request was authenticated as.
type Identity struct {
	Tenant      string
	Scopes      Scope
	Environment string
	// Project is the Sentry project a DSN key is bound to; "" for any.
	Project string
}

// Refusal reasons, the label of vigil_auth_refused_total.
const (
	ReasonMissing        = "missing"         // no credentials: 401
	ReasonMalformed      = "malformed"       // an Authorization header Vigil cannot read: 401
	ReasonInvalidKey     = "invalid_key"     // a key in no tenant: 401
	ReasonUntrustedProxy = "untrusted_proxy" // X-Scope-OrgID without a key from an untrusted address: 401
	ReasonScope          = "scope"           // the key lacks the scope: 403
	ReasonTenant         = "tenant"          // X-Scope-OrgID names another tenant than the key's: 403
	ReasonUnknownTenant  = "unknown_tenant"  // a trusted proxy names a tenant not configured: 403
	ReasonProject        = "project"         // a DSN key bound to another project: 403
)

// Error is a refused request.
type Error struct {
	// Status is 401 (who are you?) or 403 (not allowed).
	Status int
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func refuse(status int, reason, format string, args ...any) *Error {
	return &Error{Status: status, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Credentials are what a request presented.
type Credentials struct {
	// Key is the API key (Bearer token or basic auth password).
	Key string
	// OrgID is the X-Scope-OrgID header.
	OrgID string
	// Remote is the client's address, for trusted proxies.
	Remote netip.Addr
	// Malformed is set when an Authorization header was present but
	// unreadable.
	Malformed string
}

// Authenticate judges c for scope and counts the outcome.
func (a *Authenticator) Authenticate(c Credentials, scope Scope) (Identity, error) {
	id, err := a.authenticate(c, scope)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			a.metrics.refused.WithLabelValues(e.Reason).Inc()
		}
		return id, err
	}
	a.metrics.accepted.Inc()
	return id, nil
}

func (a *Authenticator) authenticate(c Credentials, scope Scope) (Identity, error) {
	t := a.cur.Load()
	if c.Malformed != "" {
		return Identity{}, refuse(http.StatusUnauthorized, ReasonMalformed, "%s", c.Malformed)
	}
	if c.Key == "" {
		if c.OrgID == "" {
			return Identity{}, refuse(http.StatusUnauthorized, ReasonMissing, "missing credentials: send a tenant key as Authorization: Bearer KEY or as the basic auth password")
		}
		if !t.trusted(c.Remote) {
			return Identity{}, refuse(http.StatusUnauthorized, ReasonUntrustedProxy, "X-Scope-OrgID without a key is believed only from the trusted_proxies of --auth.config; %s is not one: send a tenant key", c.Remote)
		}
		if t.cfg.Tenants[c.OrgID] == nil {
			return Identity{}, refuse(http.StatusForbidden, ReasonUnknownTenant, "tenant %q (X-Scope-OrgID) is not in --auth.config", clip(c.OrgID))
		}
		if t.cfg.ProxyScopes&scope == 0 {
			return Identity{}, refuse(http.StatusForbidden, ReasonScope, "trusted proxies may %s, not %s", t.cfg.ProxyScopes, scope)
		}
		return Identity{Tenant: c.OrgID, Scopes: t.cfg.ProxyScopes}, nil
	}
	k := find(t.keys, sha256.Sum256([]byte(c.Key)))
	if k == nil {
		return Identity{}, refuse(http.StatusUnauthorized, ReasonInvalidKey, "the key is not one of --auth.config")
	}
	if c.OrgID != "" && c.OrgID != k.tenant.ID {
		return Identity{}, refuse(http.StatusForbidden, ReasonTenant, "the key is tenant %q's, not %q's (X-Scope-OrgID)", k.tenant.ID, clip(c.OrgID))
	}
	if k.scopes&scope == 0 {
		return Identity{}, refuse(http.StatusForbidden, ReasonScope, "tenant %q's key may %s, not %s", k.tenant.ID, k.scopes, scope)
	}
	return Identity{Tenant: k.tenant.ID, Scopes: k.scopes, Environment: k.environment}, nil
}

// AuthenticateDSN judges a Sentry DSN public key sent to project and
// counts the outcome.
func (a *Authenticator) AuthenticateDSN(dsnKey, project string) (Identity, error) {
	t := a.cur.Load()
	var err *Error
	k := find(t.dsn, sha256.Sum256([]byte(dsnKey)))
	switch {
	case dsnKey == "":
		err = refuse(http.StatusUnauthorized, ReasonMissing, "missing DSN key")
	case k == nil:
		err = refuse(http.StatusUnauthorized, ReasonInvalidKey, "DSN key %q is not one of the sentry_keys of --auth.config", clip(dsnKey))
	case k.project != "" && k.project != project:
		err = refuse(http.StatusForbidden, ReasonProject, "DSN key %q is for project %s, not project %s", clip(dsnKey), k.project, clip(project))
	}
	if err != nil {
		a.metrics.refused.WithLabelValues(err.Reason).Inc()
		return Identity{}, err
	}
	a.metrics.accepted.Inc()
	return Identity{Tenant: k.tenant.ID, Scopes: k.scopes, Project: project}, nil
}

func (t *table) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range t.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity of the request of ctx, and false when
// it was not authenticated (auth off).
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// WithTenant returns ctx carrying tenant as the identity of work that was
// authenticated before, elsewhere: the ingester stores the records of a
// queue message under the tenant the collector authenticated, carried in
// the message (queue.Message.Tenant). It grants no scope.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return WithIdentity(ctx, Identity{Tenant: tenant})
}

// ValidTenant reports whether id can name a tenant: a letter or digit, then
// at most 127 letters, digits, '_', '.' or '-'. Such an id is safe as one
// component of a file path ("." and ".." are not valid).
func ValidTenant(id string) bool { return tenantID.MatchString(id) }

// Tenant returns the tenant of the request of ctx: DefaultTenant when auth
// is off.
func Tenant(ctx context.Context) string {
	if id, ok := FromContext(ctx); ok && id.Tenant != "" {
		return id.Tenant
	}
	return DefaultTenant
}

type metrics struct {
	refused       *prometheus.CounterVec
	accepted      prometheus.Counter
	reloads       *prometheus.CounterVec
	lastOK        prometheus.Gauge
	lastTime      prometheus.Gauge
	tenants, keys prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "auth", Name: "refused_total",
			Help: "Requests refused by authentication, by reason: missing, malformed, invalid_key, untrusted_proxy (401); scope, tenant, unknown_tenant, project (403).",
		}, []string{"reason"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "auth", Name: "accepted_total",
			Help: "Requests authenticated and allowed.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "auth", Name: "config_reloads_total",
			Help: "Reads of --auth.config, by result (success, failure); a failure keeps the previous configuration.",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vigil", Subsystem: "auth", Name: "config_last_reload_successful",
			Help: "1 when the last read of --auth.config succeeded, 0 when the file in place is refused and the previous configuration is in effect.",
		}),
		lastTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vigil", Subsystem: "auth", Name: "config_last_reload_success_timestamp_seconds",
			Help: "When --auth.config was last read successfully.",
		}),
		tenants: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vigil", Subsystem: "auth", Name: "tenants",
			Help: "Tenants of the configuration in effect.",
		}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vigil", Subsystem: "auth", Name: "keys",
			Help: "Keys (API and Sentry DSN keys) of the configuration in effect.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.refused, m.accepted, m.reloads, m.lastOK, m.lastTime, m.tenants, m.keys)
	}
	return m
}
