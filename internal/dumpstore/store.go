// Package dumpstore is the embedded dump store of all-in-one mode: crash
// and error events and the issues they are grouped into, under
// <data-dir>/dumps. Every write is one checksummed record appended to the
// journal of the day and fsynced before WriteDumps returns, holding the new
// events and the new state of the issues they changed, so a crash (kill -9,
// power loss) loses no acknowledged event and never counts one twice. The
// index (events by id, issues) lives in memory and is rebuilt from the
// journals on open; event bodies are read from disk. Journals older than
// the retention are deleted whole. The format is docs/format/dumpstore.md.
package dumpstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

var (
	_ storage.DumpWriter        = (*Store)(nil)
	_ storage.DumpReader        = (*Store)(nil)
	_ storage.DumpStatsReader   = (*Store)(nil)
	_ storage.IssueStatusSetter = (*Store)(nil)
)

// Options configures a Store.
type Options struct {
	// Dir is the store's directory, <data-dir>/dumps.
	Dir string
	// RetentionDays is how many days of journals are kept, the current
	// one included; 0 keeps everything.
	RetentionDays int
	// RetentionInterval is how often Run applies the retention; 0 is an
	// hour.
	RetentionInterval time.Duration
	// MaxIssueValues bounds the releases, environments and hosts an issue
	// lists.
	MaxIssueValues int
	// Now is the clock; nil is time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns options that suit one machine.
func DefaultOptions(dir string) Options {
	return Options{Dir: dir, RetentionDays: 30, MaxIssueValues: 100, Logger: slog.Default()}
}

// Store is the embedded dump store. It is safe for concurrent use.
type Store struct {
	opts Options
	m    *metrics

	// wmu serializes writers; mu guards the index below.
	wmu      sync.Mutex
	mu       sync.RWMutex
	journals map[string]*journal // by day, "2006-01-02"
	current  *journal
	events   map[string]*eventMeta
	byTime   []*eventMeta // in write order
	issues   map[string]*issueState
	closed   bool
	// retentionDays is Options.RetentionDays, changed by SetRetention.
	retentionDays atomic.Int64
}

// issueState is an issue and the journal that holds its latest state.
type issueState struct {
	model.Issue
	day string
}

const dayLayout = "2006-01-02"

// Open opens the store in opts.Dir, creating it if needed, and rebuilds its
// index from the journals. A journal whose last record is torn (a crash
// during a write that was never acknowledged) is cut before that record.
func Open(opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Hour
	}
	if opts.MaxIssueValues <= 0 {
		opts.MaxIssueValues = 100
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create dump store directory: %w", err)
	}
	s := &Store{
		opts: opts, m: newMetrics(opts.Registerer),
		journals: map[string]*journal{}, events: map[string]*eventMeta{}, issues: map[string]*issueState{},
	}
	s.retentionDays.Store(int64(opts.RetentionDays))
	names, err := filepath.Glob(filepath.Join(opts.Dir, "*"+journalSuffix))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		day := strings.TrimSuffix(filepath.Base(name), journalSuffix)
		if _, err := time.Parse(dayLayout, day); err != nil {
			return nil, fmt.Errorf("dump store %s: unexpected journal %s: want YYYY-MM-DD%s", opts.Dir, name, journalSuffix)
		}
		j, err := openJournal(name, day, s.replay)
		if err != nil {
			_ = s.closeJournals() // the open error is the one to report
			return nil, err
		}
		s.journals[day] = j
	}
	s.m.issues.Set(float64(len(s.issues)))
	s.m.events.Set(float64(len(s.events)))
	return s, nil
}

// replay applies one journal record to the index.
func (s *Store) replay(day string, events []entryRef, issues []model.Issue) {
	for _, e := range events {
		if _, dup := s.events[e.meta.ID]; dup {
			continue
		}
		e.meta.day = day
		s.events[e.meta.ID] = e.meta
		s.byTime = append(s.byTime, e.meta)
	}
	for _, is := range issues {
		s.issues[is.ID] = &issueState{Issue: is, day: day}
	}
}

// journalFor returns the journal of today, opening or creating it, and
// applies the retention when the day changed. Called with wmu held.
func (s *Store) journalFor(now time.Time) (*journal, error) {
	day := now.UTC().Format(dayLayout)
	if s.current != nil && s.current.day == day {
		return s.current, nil
	}
	j := s.journals[day]
	if j == nil {
		var err error
		j, err = createJournal(filepath.Join(s.opts.Dir, day+journalSuffix), day)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.journals[day] = j
		s.mu.Unlock()
	}
	s.current = j
	if err := s.applyRetention(now); err != nil {
		return nil, err
	}
	return j, nil
}

// RetentionDays is a retention in the whole days the store keeps (a part
// of a day counts as a day); 0 keeps everything.
func RetentionDays(retention time.Duration) int {
	const day = 24 * time.Hour
	return int((retention + day - 1) / day)
}

// SetRetention changes the retention, in RetentionDays, while the store is
// open, and applies it at once.
func (s *Store) SetRetention(retention time.Duration) error {
	s.retentionDays.Store(int64(RetentionDays(retention)))
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	// Today's journal takes the issues kept from the journals deleted.
	now := s.opts.Now()
	if _, err := s.journalFor(now); err != nil {
		return err
	}
	return s.applyRetention(now)
}

// applyRetention deletes the journals older than the retention. Issues
// still seen within the retention whose latest state is in such a journal
// are first written again into the current one. Called with wmu held.
func (s *Store) applyRetention(now time.Time) error {
	days := int(s.retentionDays.Load())
	if days <= 0 {
		return nil
	}
	cutoff := now.UTC().AddDate(0, 0, -(days - 1)).Format(dayLayout)
	cutoffNs := mustDay(cutoff).UnixNano()
	var old []string
	for day := range s.journals {
		if day < cutoff {
			old = append(old, day)
		}
	}
	if len(old) == 0 {
		return nil
	}
	isOld := func(day string) bool { return day < cutoff }
	var keep []model.Issue
	s.mu.RLock()
	for _, is := range s.issues {
		if isOld(is.day) && is.LastSeen >= cutoffNs {
			keep = append(keep, is.Issue)
		}
	}
	s.mu.RUnlock()
	if len(keep) > 0 {
		if _, err := s.current.append(nil, keep); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, is := range keep {
		s.issues[is.ID].day = s.current.day
	}
	for id, is := range s.issues {
		if isOld(is.day) {
			delete(s.issues, id)
		}
	}
	kept := s.byTime[:0]
	for _, e := range s.byTime {
		if isOld(e.day) {
			delete(s.events, e.ID)
			continue
		}
		kept = append(kept, e)
	}
	clear(s.byTime[len(kept):])
	s.byTime = kept
	var errs []error
	for _, day := range old {
		j := s.journals[day]
		delete(s.journals, day)
		errs = append(errs, j.close(), os.Remove(j.path))
		s.opts.Logger.Info("deleted a dump journal past the retention", "day", day, "retention_days", days)
	}
	errs = append(errs, fsutil.SyncDir(s.opts.Dir))
	s.m.issues.Set(float64(len(s.issues)))
	s.m.events.Set(float64(len(s.events)))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot delete dump journals past the retention: %w", err)
	}
	return nil
}

func mustDay(day string) time.Time {
	t, err := time.Parse(dayLayout, day)
	if err != nil {
		panic(err)
	}
	return t
}

// Run deletes the journals past the retention every
// Options.RetentionInterval until ctx ends (writes also apply it when the
// day changes).
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.wmu.Lock()
		var err error
		if !s.closed {
			// Opens today's journal, applying the retention on a new day.
			if _, err = s.journalFor(s.opts.Now()); err == nil {
				err = s.applyRetention(s.opts.Now())
			}
		}
		s.wmu.Unlock()
		if err != nil {
			s.opts.Logger.Warn("cannot apply the dump store's retention", "err", err)
		}
	}
}

// Close closes the journals.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeJournals()
}

func (s *Store) closeJournals() error {
	var errs []error
	for _, j := range s.journals {
		errs = append(errs, j.close())
	}
	return errors.Join(errs...)
}

// ErrClosed is returned by the operations of a closed store.
var ErrClosed = errors.New("dump store is closed")
