package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/dumptest"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

// TestTenantRetentionFollowsTheAuthConfig changes a tenant's retention in
// --auth.config while its stores are open and running, embedded and on
// Elasticsearch: after the reload every signal's store of that tenant has
// the new retention and what is now past it is gone, while the default
// tenant's older data stays.
func TestTenantRetentionFollowsTheAuthConfig(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		testTenantRetention(t, &backends{dataDir: t.TempDir()}, "team-a", 2, func() {})
	})
	t.Run("elasticsearch", func(t *testing.T) {
		esURL := estest.URL(t)
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		f := addESFlags(fs)
		run := fmt.Sprintf("r%08x", rand.Uint32())
		if err := fs.Parse([]string{"--es.urls=" + esURL, "--es.replicas=0", "--es.index-prefix=" + run + "-logs-",
			"--es.jaeger.index-prefix=" + run, "--es.dumps.index-prefix=" + run, "--es.profiles.index-prefix=" + run}); err != nil {
			t.Fatal(err)
		}
		tenant := "team-a-" + run
		patterns := run + "*," + tenantIndexPrefix(tenant) + "*"
		esDo := func(method, path string) {
			req, _ := http.NewRequest(method, esURL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		t.Cleanup(func() { esDo(http.MethodDelete, "/"+patterns+"?expand_wildcards=all") })
		testTenantRetention(t, &backends{es: f}, tenant, 1, func() { esDo(http.MethodPost, "/"+patterns+"/_refresh") })
	})
}

func testTenantRetention(t *testing.T, b *backends, tenant string, dumpsKept int, refresh func()) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	file := filepath.Join(t.TempDir(), "auth.yaml")
	writeConfig := func(retention string) {
		t.Helper()
		c := fmt.Sprintf("tenants:\n  %s:\n    keys:\n      - sha256: %q\n        scopes: [write, read]\n    limits: {retention: %s}\n",
			tenant, keyHash("key-a"), retention)
		if err := os.WriteFile(file, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("30d")
	d := newDaemon(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	a, err := auth.New(auth.Options{File: file, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d.auth = a

	stores := openSignalStores(d, b)
	logsTS, spansTS, dumpsTS, profilesTS := stores.logs, stores.spans, stores.dumps, stores.profiles
	logs, spans, dumps, profiles := routedLogs{logsTS}, routedSpans{spansTS}, routedDumps{dumpsTS}, routedProfiles{profilesTS}
	ctxA, ctxDefault := auth.WithTenant(ctx, tenant), auth.WithTenant(ctx, auth.DefaultTenant)

	// Ten days ago and now, for the tenant and for the default tenant
	// (whose retention is --retention: none here).
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour)
	pg := profiletest.NewProgram(1, 10, 10)
	for i, c := range []context.Context{ctxA, ctxDefault} {
		for j, ts := range []time.Time{old, now} {
			id := byte(10*i + j + 1)
			if err := logs.Write(c, []model.LogRecord{{ID: model.RecordID{id}, Timestamp: ts.UnixNano(), ObservedTimestamp: ts.UnixNano(), Service: "svc", Message: "m"}}); err != nil {
				t.Fatal(err)
			}
			if err := spans.Write(c, []model.Span{{TraceID: model.TraceID{id}, SpanID: model.SpanID{id}, Name: "op", StartTime: ts.UnixNano(), Duration: 1000, Service: "svc"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := dumps.WriteDumps(c, []storage.GroupedDump{dumptest.Event(fmt.Sprintf("%032x", id), "7", ts)}); err != nil {
				t.Fatal(err)
			}
			if err := profiles.Write(c, []model.Profile{model.NewProfile("cpu", profiletest.Labels("service", "svc"), ts.UnixNano(), 10e9, pg.CPUProfile(int(id), ts.UnixNano(), false))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	refresh()
	type found struct{ logs, spans, dumps, profiles int }
	count := func(c context.Context, base byte) found {
		t.Helper()
		var f found
		err := logs.Select(c, storage.SelectParams{Start: old.Add(-time.Hour).UnixNano(), End: now.Add(time.Hour).UnixNano()}, func(*storage.Row) bool { f.logs++; return true })
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []byte{base + 1, base + 2} {
			if _, err := spans.GetTrace(c, model.TraceID{id}); err == nil {
				f.spans++
			} else if !errors.Is(err, storage.ErrTraceNotFound) {
				t.Fatal(err)
			}
		}
		for _, id := range []byte{base + 1, base + 2} {
			if _, err := dumps.GetEvent(c, fmt.Sprintf("%032x", id)); err == nil {
				f.dumps++
			} else if !errors.Is(err, storage.ErrEventNotFound) {
				t.Fatal(err)
			}
		}
		ps, err := profiles.Profiles(c, storage.ProfileSelector{Type: "cpu", Start: old.Add(-time.Hour).UnixNano(), End: now.Add(time.Hour).UnixNano()}, 100)
		if err != nil {
			t.Fatal(err)
		}
		f.profiles = len(ps)
		return f
	}
	if got, want := count(ctxA, 0), (found{2, 2, 2, 2}); got != want {
		t.Fatalf("%s before the change: found %+v; want %+v", tenant, got, want)
	}

	var running sync.WaitGroup
	for _, run := range []func(context.Context) error{logsTS.Run, spansTS.Run, dumpsTS.Run, profilesTS.Run} {
		running.Go(func() {
			if err := run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		cancel()
		running.Wait()
		if err := stores.Close(); err != nil {
			t.Error(err)
		}
	}()
	for _, ts := range []interface{ retentionChanged() }{logsTS, spansTS, dumpsTS, profilesTS} {
		a.OnReload(ts.retentionChanged)
	}
	writeConfig("7d")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	retained := func() []time.Duration {
		var rs []time.Duration
		for _, r := range []func() time.Duration{logsTS.retainedBy(tenant), spansTS.retainedBy(tenant), dumpsTS.retainedBy(tenant), profilesTS.retainedBy(tenant)} {
			rs = append(rs, r())
		}
		return rs
	}
	week := 7 * 24 * time.Hour
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rs := retained()
		if rs[0] == week && rs[1] == week && rs[2] == week && rs[3] == week {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention of %s's logs, spans, dumps and profiles stores: %v; want 7d each", tenant, rs)
		}
	}
	refresh()
	// The embedded dump store keeps a day's journal of what it received
	// that day, so today's write of an old event stays; Elasticsearch
	// keeps events by their day.
	want := found{1, 1, dumpsKept, 1}
	if got := count(ctxA, 0); got != want {
		t.Errorf("%s after its retention became 7d: found %+v; want %+v", tenant, got, want)
	}
	if got, want := count(ctxDefault, 10), (found{2, 2, 2, 2}); got != want {
		t.Errorf("the default tenant after %s's retention changed: found %+v; want all %+v", tenant, got, want)
	}
}

// retainedBy returns what tells the retention tenant's open store has.
func (t *tenantStores[S]) retainedBy(tenant string) func() time.Duration {
	return func() time.Duration {
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.retained[tenant]
	}
}

// flakyStore takes a retention change only at its second try, as an
// Elasticsearch that did not answer the first time.
type flakyStore struct {
	tries atomic.Int32
	got   atomic.Int64
}

func (s *flakyStore) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (s *flakyStore) Close() error                  { return nil }
func (s *flakyStore) SetRetention(r time.Duration) error {
	if s.tries.Add(1) == 1 {
		return errors.New("no answer")
	}
	s.got.Store(int64(r))
	return nil
}

// TestTenantRetentionRetried: a store that fails to take a new retention
// is asked again, without another reload.
func TestTenantRetentionRetried(t *testing.T) {
	var want atomic.Int64
	want.Store(int64(30 * 24 * time.Hour))
	fs := &flakyStore{}
	ts := newTenantStores("test", func(string) time.Duration { return time.Duration(want.Load()) },
		func(context.Context, string, time.Duration) (*flakyStore, error) { return fs, nil }, slog.New(slog.DiscardHandler))
	ts.retryRetention = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := ts.of(ctx, "team-a"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- ts.Run(ctx) }()
	want.Store(int64(7 * 24 * time.Hour))
	ts.retentionChanged()
	for deadline := time.Now().Add(30 * time.Second); fs.got.Load() != want.Load() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := time.Duration(fs.got.Load()); got != 7*24*time.Hour || fs.tries.Load() < 2 || ts.retainedBy("team-a")() != 7*24*time.Hour {
		t.Errorf("after a failed change: store has %v after %d tries, retained %v; want 168h after a retry", got, fs.tries.Load(), ts.retainedBy("team-a")())
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
