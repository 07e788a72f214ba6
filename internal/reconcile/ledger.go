// Package reconcile finds records that were produced but never stored. The
// collector counts what the queue accepted per minute, tenant, service and
// source in a ledger on its disk; `vigil reconcile` compares those counts
// with what each tenant's store holds, through the Loki API, and reports
// the gaps.
package reconcile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
)

// Key identifies one count: a minute of record timestamps, a tenant, a
// service and a source.
type Key struct {
	Minute  int64 // Unix seconds of the minute's start
	Tenant  string
	Service string
	Source  string
}

// ledgerLine is one line of a ledger file: a delta for a key. The default
// tenant is written as no tenant, as every line was before tenants, so a
// ledger of an earlier release reads as the default tenant's.
type ledgerLine struct {
	Minute  int64  `json:"minute"`
	Tenant  string `json:"tenant,omitempty"`
	Service string `json:"service"`
	Source  string `json:"source"`
	Count   int64  `json:"count"`
}

// Ledger records produced counts. Record appends the counts of a batch to
// the ledger file right away (a write, no fsync), so a process crash loses
// none; Run fsyncs every second, so a machine crash loses at most the last
// second, which reconcile then reports as a surplus, never as a gap.
//
// A record whose id was counted recently (see recentIDs) is not counted
// again, so redeliveries after a crash do not show up as produced twice.
type Ledger struct {
	mu     sync.Mutex
	dir    string
	f      *os.File
	day    string
	buf    []byte
	sync   bool
	recent *recentIDs
}

// RecentWindow is how many of the latest record ids a ledger remembers.
const RecentWindow = 1 << 16

// OpenLedger opens the ledger under dir.
func OpenLedger(dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create ledger directory: %w", err)
	}
	recent, err := openRecentIDs(filepath.Join(dir, "recent-ids"), RecentWindow)
	if err != nil {
		return nil, err
	}
	return &Ledger{dir: dir, recent: recent}, nil
}

// Record counts recs, records of tenant, as produced.
func (l *Ledger) Record(tenant string, recs []model.LogRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[Key]int64{}
	for i := range recs {
		r := &recs[i]
		if l.recent.add(r.ID) {
			counts[Key{Minute: r.Timestamp / 1e9 / 60 * 60, Tenant: tenant, Service: r.Service, Source: r.Source}]++
		}
	}
	if err := l.recent.persist(); err != nil {
		return fmt.Errorf("cannot write recent ids: %w", err)
	}
	day := time.Now().UTC().Format("2006-01-02")
	if l.f == nil || day != l.day {
		if l.f != nil {
			_ = l.f.Close()
		}
		f, err := os.OpenFile(filepath.Join(l.dir, "produced-"+day+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
		if err != nil {
			return fmt.Errorf("cannot open ledger: %w", err)
		}
		l.f, l.day = f, day
	}
	l.buf = l.buf[:0]
	for k, n := range counts {
		ln := ledgerLine{Minute: k.Minute, Tenant: k.Tenant, Service: k.Service, Source: k.Source, Count: n}
		if ln.Tenant == auth.DefaultTenant {
			ln.Tenant = ""
		}
		b, _ := json.Marshal(ln)
		l.buf = append(append(l.buf, b...), '\n')
	}
	if _, err := l.f.Write(l.buf); err != nil {
		return fmt.Errorf("cannot write ledger: %w", err)
	}
	l.sync = true
	return nil
}

// Run fsyncs the ledger every second until ctx ends.
func (l *Ledger) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.flush(); err != nil {
				return err
			}
		}
	}
}

func (l *Ledger) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || !l.sync {
		return nil
	}
	l.sync = false
	if err := errors.Join(l.f.Sync(), l.recent.sync()); err != nil {
		return fmt.Errorf("cannot sync ledger: %w", err)
	}
	return nil
}

// Close syncs and closes the ledger.
func (l *Ledger) Close() error {
	err := l.flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		err = errors.Join(err, l.f.Close())
		l.f = nil
	}
	if l.recent != nil {
		err = errors.Join(err, l.recent.close())
		l.recent = nil
	}
	return err
}

// ReadProduced sums the ledger files under dir for minutes in [from, to).
// A torn last line (a crash mid-write) is skipped.
func ReadProduced(dir string, from, to time.Time) (map[Key]int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "produced-*.jsonl"))
	if err != nil {
		return nil, err
	}
	out := map[Key]int64{}
	for _, name := range files {
		f, err := os.Open(name) // #nosec G304 -- the operator's data directory and a name the store made or listed there
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ln ledgerLine
			if json.Unmarshal(sc.Bytes(), &ln) != nil {
				continue
			}
			if ln.Minute < from.Unix() || ln.Minute >= to.Unix() {
				continue
			}
			if ln.Tenant == "" {
				ln.Tenant = auth.DefaultTenant
			}
			out[Key{ln.Minute, ln.Tenant, ln.Service, ln.Source}] += ln.Count
		}
		err = errors.Join(sc.Err(), f.Close())
		if err != nil {
			return nil, fmt.Errorf("cannot read ledger %s: %w", name, err)
		}
	}
	return out, nil
}
