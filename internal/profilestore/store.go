// Package profilestore is Vigil's embedded profile store, used in
// all-in-one mode.
//
// Profiles are partitioned by the UTC day of their time. A partition is one
// append-only file of records, one per profile, each fsync'ed before Write
// returns. The symbols (strings, mappings, functions, locations), the stacks
// and the samples' pprof label sets of a day are kept once, in dictionaries
// whose additions travel in the record of the profile that first used
// them; a profile's record then holds only its metadata and its samples as
// (stack id, label set id, values), zstd-compressed. Opening the store
// replays the files' metadata to rebuild the dictionaries and the index; a
// merge decodes only the samples of the profiles it selects and adds them up
// by stack id before building one pprof profile. docs/profiles.md explains
// the design, docs/format/profilestore.md the file.
package profilestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/storage"
)

var (
	_ storage.ProfileWriter = (*Store)(nil)
	_ storage.ProfileReader = (*Store)(nil)
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("profile store is closed")

// Options configure a Store.
type Options struct {
	// Dir is the data directory. It is created when missing.
	Dir string
	// Retention drops whole day partitions whose day ended more than
	// Retention ago, and skips profiles older than that; 0 keeps
	// everything.
	Retention time.Duration
	// MaxDecodedBytes bounds the size of a profile's pprof once
	// decompressed; a larger profile is refused. 0 means 64 MiB.
	MaxDecodedBytes int64
	// Logger receives the store's own logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil registers nothing.
	Registerer prometheus.Registerer

	now       func() time.Time // tests move the clock
	failWrite func() error     // tests fail the next appends
}

// DefaultOptions returns options for a store in dir that keeps everything.
func DefaultOptions(dir string) Options { return Options{Dir: dir} }

const defaultMaxDecodedBytes = 64 << 20

// Store is an embedded profile store. Its methods are safe for concurrent
// use. It is the ingester's storage.ProfileWriter and the query APIs'
// storage.ProfileReader.
type Store struct {
	opts Options
	log  *slog.Logger
	m    *metrics
	lock *os.File

	// writeMu serialises writes: deduplication, appends and commits.
	writeMu sync.Mutex
	enc     *encoder
	wbuf    []byte

	// mu guards parts and closed.
	mu     sync.RWMutex
	parts  map[int64]*partition
	closed bool

	// retention is Options.Retention, changed by SetRetention.
	retention atomic.Int64
}

// Open opens or creates the store in opts.Dir. Each partition's file is
// replayed; a torn record at its end (a crash during a write that was
// therefore never acknowledged) is cut off.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("profile store: no data directory given")
	}
	if opts.MaxDecodedBytes <= 0 {
		opts.MaxDecodedBytes = defaultMaxDecodedBytes
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	s := &Store{opts: opts, log: opts.Logger, parts: map[int64]*partition{}, enc: newEncoder()}
	s.retention.Store(int64(opts.Retention))
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.m = newMetrics()
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create profile store directory: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.openPartitions(); err != nil {
		return nil, errors.Join(err, s.closeFiles())
	}
	if err := s.ApplyRetention(); err != nil {
		return nil, errors.Join(err, s.closeFiles())
	}
	if opts.Registerer != nil {
		if err := s.m.register(opts.Registerer, s); err != nil {
			return nil, errors.Join(err, s.closeFiles())
		}
	}
	return s, nil
}

func (s *Store) openPartitions() error {
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("cannot list profile store directory: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		t, err := time.Parse(dayFormat, e.Name())
		if err != nil {
			continue
		}
		day := dayOf(t.UnixNano())
		p, err := openPartition(s.opts.Dir, day, false)
		if err != nil {
			return err
		}
		s.parts[day] = p
	}
	return nil
}

// Run applies retention every hour until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.ApplyRetention(); err != nil {
				s.log.Warn("cannot apply profile retention", "err", err)
			}
		}
	}
}

// minDay returns the first day retention keeps, or math.MinInt64 when it
// keeps everything.
func (s *Store) minDay() int64 {
	r := time.Duration(s.retention.Load())
	if r <= 0 {
		return -1 << 62
	}
	return dayOf(s.opts.now().Add(-r).UnixNano())
}

// SetRetention changes the retention while the store is open, and applies
// it at once.
func (s *Store) SetRetention(r time.Duration) error {
	s.retention.Store(int64(r))
	return s.ApplyRetention()
}

// ApplyRetention removes the partitions whose day ended more than
// Retention ago.
func (s *Store) ApplyRetention() error {
	// The retention is read under writeMu, so that a pass that started
	// before a SetRetention cannot apply the old one after it.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	min := s.minDay()
	s.mu.Lock()
	var drop []*partition
	for day, p := range s.parts {
		if day < min {
			drop = append(drop, p)
			delete(s.parts, day)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range drop {
		// Queries of the partition that began before it left s.parts
		// finish first.
		p.mu.Lock()
		p.gone = true
		errs = append(errs, p.close())
		p.mu.Unlock()
		if err := os.RemoveAll(p.dir); err != nil {
			errs = append(errs, fmt.Errorf("cannot remove expired profile partition %s: %w", p.dir, err))
			continue
		}
		s.m.partitionsDropped.Inc()
		s.log.Info("removed expired profile partition", "day", p.name)
	}
	if len(drop) > 0 {
		errs = append(errs, fsutil.SyncDir(s.opts.Dir))
	}
	return errors.Join(errs...)
}

// Close closes the store. Every acknowledged write is already durable.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.m.unregister()
	return s.closeFiles()
}

func (s *Store) closeFiles() error {
	var errs []error
	for _, p := range s.parts {
		p.mu.Lock()
		errs = append(errs, p.close())
		p.mu.Unlock()
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// partitionsFor returns the partitions that may hold profiles in [start,
// end), oldest first, or ErrClosed.
func (s *Store) partitionsFor(start, end int64) ([]*partition, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	first, last := dayOf(start), int64(1<<62)
	if end > 0 {
		last = dayOf(end - 1)
	}
	var ps []*partition
	for day, p := range s.parts {
		if day >= first && day <= last {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].day < ps[j].day })
	return ps, nil
}

// Stats describe what a Store holds.
type Stats struct {
	Profiles   int64
	Partitions int
	DiskBytes  int64 // bytes of the partition files
}

// DiskStats returns what the store holds.
func (s *Store) DiskStats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Partitions: len(s.parts)}
	for _, p := range s.parts {
		p.mu.RLock()
		st.Profiles += int64(p.count)
		st.DiskBytes += p.size
		p.mu.RUnlock()
	}
	return st
}

// partitionDays returns the days of the partitions, oldest first.
func (s *Store) partitionDays() []int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	days := make([]int64, 0, len(s.parts))
	for d := range s.parts {
		days = append(days, d)
	}
	slices.Sort(days)
	return days
}

func lockPath(dir string) string { return filepath.Join(dir, "LOCK") }
