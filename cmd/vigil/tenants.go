package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/patterns"
)

// Tenancy in the stores: every tenant has a store of its own for each
// signal, so that its data can be found, retained and deleted on its own
// and no query of one tenant can read another's (docs/security.md,
// "Tenancy"). The tenant is the one of the request (auth.Tenant(ctx)): the
// query APIs' authenticated caller, or the tenant the ingester read from
// the queue message it writes. Without --auth.config everything is tenant
// "default", whose stores are where they always were.
//
//   - Embedded: the default tenant's stores are under --data-dir as before
//     (logs/, spans/, dumps/, profiles/); another tenant's are under
//     --data-dir/tenants/<tenant>/. Deleting a tenant is deleting that
//     directory while Vigil is stopped.
//   - Elasticsearch: the default tenant's indices keep their names; every
//     index of another tenant is named tenantIndexPrefix(tenant) followed by
//     the default name ("tenant-team-a.vigil-logs-2026.12.04",
//     "tenant-team-a.-jaeger-span-2026-12-04"), so one tenant's indices are
//     one pattern (for Kibana, a stock jaeger-query with
//     --es.index-prefix=tenant-team-a., retention and deletion), and no
//     tenant's pattern matches another's indices.

// tenantStores opens a signal's store per tenant on first use and keeps it
// open until the daemon closes.
type tenantStores[S store] struct {
	signal string
	// retention is a tenant's retention now, which a reload of
	// --auth.config changes; open opens a tenant's store with it.
	retention func(tenant string) time.Duration
	open      func(ctx context.Context, tenant string, retention time.Duration) (S, error)
	logger    *slog.Logger

	mu     sync.Mutex
	stores map[string]S
	// retained is the retention each open store has; retain asks Run to
	// bring them to the tenants' retention now.
	retained map[string]time.Duration
	retain   chan struct{}
	// retryRetention is how often Run tries again a retention change a
	// store could not take (an Elasticsearch that did not answer).
	retryRetention time.Duration
	// runCtx is the context of Run once the daemon runs the stores (an
	// ingesting daemon): a store opened later runs in it too.
	runCtx  context.Context
	running sync.WaitGroup
	runErrs chan error
	closed  bool
}

func newTenantStores[S store](signal string, retention func(tenant string) time.Duration,
	open func(ctx context.Context, tenant string, retention time.Duration) (S, error), logger *slog.Logger) *tenantStores[S] {
	return &tenantStores[S]{signal: signal, retention: retention, open: open, logger: logger,
		stores: map[string]S{}, retained: map[string]time.Duration{}, retain: make(chan struct{}, 1), retryRetention: 5 * time.Minute,
		runErrs: make(chan error, 1)}
}

// get returns the store of the tenant of ctx, opening it when needed.
func (t *tenantStores[S]) get(ctx context.Context) (S, error) {
	return t.of(ctx, auth.Tenant(ctx))
}

func (t *tenantStores[S]) of(ctx context.Context, tenant string) (S, error) {
	var zero S
	if !auth.ValidTenant(tenant) {
		return zero, fmt.Errorf("tenant %q: not a valid tenant id (a letter or digit, then at most 127 letters, digits, '_', '.' or '-')", tenant)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.stores[tenant]; ok {
		return s, nil
	}
	if t.closed {
		return zero, fmt.Errorf("%s store of tenant %q: the daemon is stopping", t.signal, tenant)
	}
	// Opening holds the lock: the first request of a new tenant waits for
	// its store (a few milliseconds embedded, a few requests to
	// Elasticsearch), and no two opens of one store can race.
	r := t.retention(tenant)
	s, err := t.open(context.WithoutCancel(ctx), tenant, r)
	if err != nil {
		return zero, fmt.Errorf("cannot open the %s store of tenant %q: %w", t.signal, tenant, err)
	}
	t.stores[tenant] = s
	t.retained[tenant] = r
	if t.runCtx != nil {
		t.start(s)
	}
	return s, nil
}

// start runs s until the run context ends; the caller holds mu.
func (t *tenantStores[S]) start(s S) {
	t.running.Add(1)
	go func() {
		defer t.running.Done()
		if err := s.Run(t.runCtx); err != nil && t.runCtx.Err() == nil {
			select {
			case t.runErrs <- err:
			default:
			}
		}
	}()
}

// Run runs every store opened, and every store opened later, until ctx
// ends or one of them fails.
func (t *tenantStores[S]) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.mu.Lock()
	t.runCtx = ctx
	for _, s := range t.stores {
		t.start(s)
	}
	t.mu.Unlock()
	retry := time.NewTicker(t.retryRetention)
	defer retry.Stop()
	var err error
	for err == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case err = <-t.runErrs:
		case <-t.retain:
			t.applyRetention(ctx)
		case <-retry.C:
			t.applyRetention(ctx) // changes nothing when every store took its retention
		}
	}
	cancel()
	t.running.Wait()
	return err
}

// retentionChanged asks Run to give every open store its tenant's
// retention now; --auth.config calls it after each reload. Requests made
// while Run applies one are taken together.
func (t *tenantStores[S]) retentionChanged() {
	select {
	case t.retain <- struct{}{}:
	default:
	}
}

// applyRetention changes the retention of every open store whose tenant's
// retention changed, which applies it at once (deleting what is now past
// it). A store that cannot is logged and tried again every retryRetention.
func (t *tenantStores[S]) applyRetention(ctx context.Context) {
	type change struct {
		tenant string
		store  S
		r      time.Duration
	}
	var changes []change
	t.mu.Lock()
	for tenant, s := range t.stores {
		if r := t.retention(tenant); r != t.retained[tenant] {
			changes = append(changes, change{tenant, s, r})
		}
	}
	t.mu.Unlock()
	for _, c := range changes {
		if err := setStoreRetention(ctx, c.store, c.r); err != nil {
			t.logger.Error("cannot change the retention of a store", "signal", t.signal, "tenant", c.tenant, "retention", c.r, "err", err)
			continue
		}
		t.logger.Info("store retention changed", "signal", t.signal, "tenant", c.tenant, "retention", c.r)
		t.mu.Lock()
		t.retained[c.tenant] = c.r
		t.mu.Unlock()
	}
}

// setStoreRetention changes the retention of an open store of any signal
// in either mode.
func setStoreRetention(ctx context.Context, s any, r time.Duration) error {
	if p, ok := s.(*patterns.Store); ok {
		s = p.Backend
	}
	switch s := s.(type) {
	case interface {
		SetRetention(context.Context, time.Duration) error
	}: // Elasticsearch
		return s.SetRetention(ctx, r)
	case interface{ SetRetention(time.Duration) error }: // embedded
		return s.SetRetention(r)
	}
	return fmt.Errorf("a %T cannot change its retention", s)
}

// Close closes every store opened.
func (t *tenantStores[S]) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	var err error
	for tenant, s := range t.stores {
		if cerr := s.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("tenant %q: %w", tenant, cerr))
		}
	}
	return err
}

// tenantDataDir is the data directory of a tenant's embedded stores.
func tenantDataDir(dataDir, tenant string) string {
	if tenant == auth.DefaultTenant {
		return dataDir
	}
	return filepath.Join(dataDir, "tenants", tenant)
}

// tenantIndexPrefix is what prefixes the names of a tenant's Elasticsearch
// indices: "" for the default tenant, else "tenant-" and the tenant id
// written in the characters index names allow, then ".". Lower-case
// letters, digits and '-' stand for themselves, '_' is written "__", '.'
// "_-" and an upper-case letter '_' and the letter in lower case: the
// mapping is one to one and never writes '.', so the first '.' ends the
// tenant and no tenant's pattern (tenant-team-a.vigil-logs-*) matches
// another tenant's indices.
func tenantIndexPrefix(tenant string) string {
	if tenant == auth.DefaultTenant {
		return ""
	}
	var b strings.Builder
	b.WriteString("tenant-")
	for _, c := range []byte(tenant) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '_':
			b.WriteString("__")
		case c == '.':
			b.WriteString("_-")
		case c >= 'A' && c <= 'Z':
			b.WriteByte('_')
			b.WriteByte(c + ('a' - 'A'))
		}
	}
	b.WriteByte('.')
	return b.String()
}

// tenantRetention is how long a tenant's data is kept: its retention in
// --auth.config when set, else --retention.
func (d *daemon) tenantRetention(b *backends, tenant string) time.Duration {
	if d.auth != nil {
		if l, ok := d.auth.Limits(tenant); ok && l.Retention > 0 {
			return l.Retention
		}
	}
	return b.retention()
}

// storeRegisterer is where the store of a tenant registers its metrics:
// the daemon's registry for the default tenant, as always; for another
// tenant a registry of its own whose metrics carry tenant="…", since a
// registry takes each metric once. /metrics serves them all.
func (d *daemon) storeRegisterer(tenant string) prometheus.Registerer {
	if tenant == auth.DefaultTenant {
		return d.reg
	}
	return d.tenantRegs.of(tenant)
}

// storeLogger is the logger of a tenant's store.
func (d *daemon) storeLogger(component, tenant string) *slog.Logger {
	l := d.logger.With("component", component)
	if tenant != auth.DefaultTenant {
		l = l.With("tenant", tenant)
	}
	return l
}

// tenantRegistries are the metric registries of the tenants' stores.
type tenantRegistries struct {
	mu   sync.Mutex
	regs map[string]*prometheus.Registry
}

func (t *tenantRegistries) of(tenant string) prometheus.Registerer {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.regs[tenant]
	if r == nil {
		if t.regs == nil {
			t.regs = map[string]*prometheus.Registry{}
		}
		r = prometheus.NewRegistry()
		t.regs[tenant] = r
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"tenant": tenant}, r)
}

// Gather gathers every tenant's registry.
func (t *tenantRegistries) Gather() ([]*dto.MetricFamily, error) {
	t.mu.Lock()
	gs := make(prometheus.Gatherers, 0, len(t.regs))
	for _, r := range t.regs {
		gs = append(gs, r)
	}
	t.mu.Unlock()
	return gs.Gather()
}
