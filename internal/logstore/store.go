// Package logstore is Vigil's embedded log store, used in all-in-one mode.
//
// Rows are partitioned by the UTC day of their timestamp. Each Write is
// appended to a write-ahead log and fsync'ed before Write returns, and kept
// in an in-memory head that queries read; when the head is full a background
// goroutine writes it out as compressed columnar blocks, one stream per
// block, each with a bloom filter of its messages' trigrams, and merges
// small blocks of a stream into big ones. docs/logstore.md explains the
// design and its measurements, docs/format/logstore.md the files.
package logstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/storage"
)

var (
	_ storage.LogWriter = (*Store)(nil)
	_ storage.LogReader = (*Store)(nil)
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("log store is closed")

// Options configure a Store.
type Options struct {
	// Dir is the data directory. It is created when missing.
	Dir string
	// Retention drops whole day partitions whose day ended more than
	// Retention ago; 0 keeps everything.
	Retention time.Duration
	// Logger receives the store's own logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil registers nothing.
	Registerer prometheus.Registerer

	tune *tuning // tests shrink the limits through this
}

// DefaultOptions returns options for a store in dir that keeps everything.
func DefaultOptions(dir string) Options { return Options{Dir: dir} }

// tuning holds the internal size limits; tests lower them.
type tuning struct {
	headBytes   int64 // rotate the head after this many bytes of rows
	dedupGen    int   // ids per dedup generation
	smallRows   int   // blocks with fewer rows are merged...
	mergeBlocks int   // ...once a stream has this many of them in a partition
	rewriteDead int   // rewrite an index holding more replaced entries than this (and than live ones)
}

func defaultTuning() tuning {
	return tuning{headBytes: 64 << 20, dedupGen: 2 << 20, smallRows: maxBlockRows / 2, mergeBlocks: 8, rewriteDead: 1024}
}

// Stats describe what a Store holds.
type Stats struct {
	Rows       int64 // rows stored, on disk and in the head
	Blocks     int64 // blocks on disk
	DiskBytes  int64 // bytes allocated on disk by all the store's files
	Partitions int   // day partitions, on disk or in the head
}

// Store is an embedded log store. Its methods are safe for concurrent use.
// It is the ingester's storage.LogWriter and the query API's
// storage.LogReader.
type Store struct {
	opts Options
	tune tuning
	log  *slog.Logger
	m    *metrics
	lock *os.File

	// writeMu serialises the critical section of Write: deduplication,
	// the WAL append and the head insert, and head rotation.
	writeMu sync.Mutex
	closed  bool
	failed  error // sticky: the WAL can no longer be trusted
	wal     *wal
	dedup   *idSet
	wbuf    writeScratch

	// mu guards parts, active, frozen, flushErr and what partitions publish
	// to queries (their blocks and streams).
	mu         sync.RWMutex
	frozenCond *sync.Cond // on mu; signalled when frozen shrinks
	parts      map[int32]*partition
	active     *head
	frozen     []*head // full heads being written out, oldest first
	flushErr   error
	queryDone  bool // Close has begun; no new queries

	minDay atomic.Int32 // retention: days before this are gone
	// retention is Options.Retention, changed by SetRetention; retainMu
	// makes a change and a retention pass take turns, so that a pass of
	// the old retention cannot raise minDay past the new one's.
	retention atomic.Int64
	retainMu  sync.Mutex

	pat patternFiles // mined patterns, next to the day partitions

	flushReq    chan struct{}
	mergeReq    chan struct{}
	mergeCalls  chan mergeCall
	stop        chan struct{}
	flusherDone chan struct{}
	mergerDone  chan struct{}
	enc         *blockEncoder // the flusher's (S2)
	flushBuf    []byte        // the flusher's
	mergeEnc    *blockEncoder // the merger's (zstd)
}

// Open opens or creates the store in opts.Dir, recovering from a crash if
// needed: torn tails of the files are cut, and rows acknowledged by Write
// but not yet in blocks are replayed from the write-ahead log.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("log store: no data directory given")
	}
	s := &Store{
		opts:        opts,
		tune:        defaultTuning(),
		log:         opts.Logger,
		parts:       map[int32]*partition{},
		flushReq:    make(chan struct{}, 1),
		mergeReq:    make(chan struct{}, 1),
		mergeCalls:  make(chan mergeCall),
		stop:        make(chan struct{}),
		flusherDone: make(chan struct{}),
		mergerDone:  make(chan struct{}),
		enc:         newBlockEncoder(codecS2),
		mergeEnc:    newBlockEncoder(codecZstd),
	}
	if opts.tune != nil {
		s.tune = *opts.tune
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.frozenCond = sync.NewCond(&s.mu)
	s.dedup = newIDSet(s.tune.dedupGen)
	s.m = newMetrics(s)
	if err := os.MkdirAll(filepath.Join(opts.Dir, walDirName), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create log store directory: %w", err)
	}
	if err := fsutil.SyncDir(opts.Dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.open(); err != nil {
		return nil, errors.Join(err, s.closeFiles())
	}
	if opts.Registerer != nil {
		if err := s.m.register(opts.Registerer); err != nil {
			return nil, errors.Join(err, s.closeFiles())
		}
	}
	go s.flushLoop()
	go s.mergeLoop()
	return s, nil
}

func (s *Store) open() error {
	s.retention.Store(int64(s.opts.Retention))
	s.minDay.Store(s.retentionDay(time.Now()))
	if err := s.openPartitions(); err != nil {
		return err
	}
	if err := s.rebuildDedup(); err != nil {
		return err
	}
	nextSeq, err := s.replayWAL()
	if err != nil {
		return err
	}
	w, err := openWAL(filepath.Join(s.opts.Dir, walDirName), nextSeq)
	if err != nil {
		return err
	}
	s.wal = w
	s.active = newHead(w.seg, nil)
	return nil
}

// Close writes the head out to blocks and closes the store. Writes and
// queries that have not started fail with ErrClosed.
func (s *Store) Close() error {
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Lock()
	if s.active.rows > 0 {
		s.frozen = append(s.frozen, s.active)
	}
	s.active = newHead(nil, nil)
	s.mu.Unlock()
	s.writeMu.Unlock()

	close(s.stop)
	<-s.flusherDone
	<-s.mergerDone
	s.mu.Lock()
	s.queryDone = true
	s.frozenCond.Broadcast()
	s.mu.Unlock()
	s.m.unregister()
	return s.closeFiles()
}

func (s *Store) closeFiles() error {
	var errs []error
	if s.wal != nil {
		errs = append(errs, s.wal.close())
	}
	s.mu.Lock()
	parts := s.parts
	s.parts = map[int32]*partition{}
	s.mu.Unlock()
	for _, p := range parts {
		errs = append(errs, p.close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// Run applies retention until ctx ends: once at start, then hourly.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.Retain(time.Now()); err != nil {
			s.log.Error("cannot apply log retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

const dayNs = int64(24 * time.Hour)

// dayOf returns the UTC day number (days since 1970-01-01) of ts.
func dayOf(ts int64) int32 {
	d := ts / dayNs
	if ts < 0 && ts%dayNs != 0 {
		d--
	}
	return int32(d)
}

func dayName(day int32) string { return time.Unix(int64(day)*86400, 0).UTC().Format(time.DateOnly) }

// retentionDay returns the first day kept at now: earlier days ended before
// now-Retention.
func (s *Store) retentionDay(now time.Time) int32 {
	r := time.Duration(s.retention.Load())
	if r <= 0 {
		return -1 << 31
	}
	return dayOf(now.Add(-r).UnixNano())
}

// SetRetention changes the retention while the store is open, and applies
// it at once: a shorter one drops the days now past it; a longer one keeps
// the days still stored and accepts records of the days it adds again.
func (s *Store) SetRetention(r time.Duration) error {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	s.retention.Store(int64(r))
	now := time.Now()
	if day := s.retentionDay(now); day < s.minDay.Load() {
		s.minDay.Store(day)
	}
	return s.retain(now)
}

// Retain drops the partitions whose day ended before now-Retention. Run
// calls it hourly; it does nothing when Retention is 0.
func (s *Store) Retain(now time.Time) error {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	return s.retain(now)
}

// retain is Retain; the caller holds retainMu.
func (s *Store) retain(now time.Time) error {
	day := s.retentionDay(now)
	for {
		old := s.minDay.Load()
		if day <= old || s.minDay.CompareAndSwap(old, day) {
			break
		}
	}
	day = s.minDay.Load()
	var dropped []*partition
	s.mu.Lock()
	for d, p := range s.parts {
		if d < day {
			delete(s.parts, d)
			dropped = append(dropped, p)
		}
	}
	if s.active != nil {
		s.active.dropDaysBefore(day)
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range dropped {
		s.log.Info("dropping log partition past retention", "partition", p.name)
		errs = append(errs, p.drop())
	}
	errs = append(errs, s.retainPatterns(day))
	return errors.Join(errs...)
}

// Stats returns what the store holds.
func (s *Store) Stats() Stats {
	var st Stats
	days := map[int32]bool{}
	s.mu.RLock()
	for d, p := range s.parts {
		days[d] = true
		st.Blocks += int64(len(p.blocks))
		st.Rows += p.rows
		st.DiskBytes += p.diskBytes()
	}
	heads := append([]*head{s.active}, s.frozen...)
	s.mu.RUnlock()
	for _, h := range heads {
		if h == nil {
			continue
		}
		h.mu.RLock()
		st.Rows += h.rows
		for k := range h.streams {
			days[k.day] = true
		}
		h.mu.RUnlock()
	}
	if s.wal != nil {
		st.DiskBytes += s.wal.diskBytes()
	}
	st.Partitions = len(days)
	return st
}
