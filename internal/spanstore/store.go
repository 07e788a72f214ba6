// Package spanstore is the embedded span store of all-in-one mode: spans
// partitioned by UTC day of their start time, each partition one
// append-only, checksummed, fsynced file of span blocks plus its index
// (trace id → spans, service → spans, tag key=value → spans, operations):
// immutable, sorted index segments on disk for the older blocks and an
// in-memory head for the newest ones. Retention drops whole days.
package spanstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Options configures a Store.
type Options struct {
	// Dir is the data directory; it is created if missing.
	Dir string
	// Retention is how long spans are kept, rounded up to whole days; 0
	// keeps them forever.
	Retention time.Duration
	// RetentionInterval is how often Run checks for expired days.
	RetentionInterval time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer

	now       func() time.Time // for tests
	sealSpans int              // head size that is sealed into a segment; for tests
}

// DefaultOptions returns a week of retention in dir.
func DefaultOptions(dir string) Options {
	return Options{Dir: dir, Retention: 7 * 24 * time.Hour, RetentionInterval: time.Minute, Logger: slog.Default()}
}

// Store is the embedded span store. Its methods are safe for concurrent use.
// It is the span ingester's storage.SpanWriter and the Jaeger API's
// storage.SpanReader and storage.DependencyReader.
type Store struct {
	opts Options

	writeMu sync.Mutex // serialises appends, so records are never interleaved

	mu     sync.RWMutex // guards parts; held for reading for a whole read
	parts  map[int64]*partition
	closed bool

	// retention is Options.Retention, changed by SetRetention.
	retention atomic.Int64

	m metrics
}

var (
	_ storage.SpanWriter       = (*Store)(nil)
	_ storage.SpanReader       = (*Store)(nil)
	_ storage.DependencyReader = (*Store)(nil)
)

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("span store is closed")

// Open opens the store in opts.Dir, recovering every partition.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("span store: Dir is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Minute
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.sealSpans <= 0 {
		opts.sealSpans = defaultSeal
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create span store directory %s: %w", opts.Dir, err)
	}
	s := &Store{opts: opts, parts: make(map[int64]*partition), m: newMetrics()}
	s.retention.Store(int64(opts.Retention))
	ents, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list span store directory %s: %w", opts.Dir, err)
	}
	for _, e := range ents {
		day, ok := parseDayName(e.Name())
		if !e.IsDir() || !ok {
			continue
		}
		p, cut, err := openPartition(day, filepath.Join(opts.Dir, e.Name()), opts.sealSpans, opts.Logger.Warn)
		if err != nil {
			_ = s.closeParts() // the open error is the one to report
			return nil, err
		}
		if cut > 0 {
			opts.Logger.Warn("span store: cut off torn tail", "partition", e.Name(), "bytes", cut)
			s.m.truncated.Add(float64(cut))
		}
		s.parts[day] = p
		s.m.spans.Add(float64(p.spans()))
	}
	if opts.Registerer != nil {
		if err := s.m.register(opts.Registerer); err != nil {
			_ = s.closeParts() // the setup error is the one to report
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) closeParts() error {
	var errs []error
	for _, p := range s.parts {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

// Close seals the in-memory indexes into segments, so that the next open
// need not read their blocks again, and closes the store's files. Reads and
// writes after Close fail.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, p := range s.parts {
		if err := p.seal(); err != nil {
			// The spans are durable: the next open indexes them again.
			s.opts.Logger.Warn("span store: cannot seal index at close", "partition", p.dir, "err", err)
		}
	}
	return s.closeParts()
}

// Run drops expired days every RetentionInterval until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		if err := s.ApplyRetention(); err != nil {
			s.opts.Logger.Warn("span store: retention failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// SetRetention changes the retention while the store is open, and applies
// it at once.
func (s *Store) SetRetention(r time.Duration) error {
	s.retention.Store(int64(r))
	return s.ApplyRetention()
}

// ApplyRetention drops every day that ended more than Retention ago.
func (s *Store) ApplyRetention() error {
	// The retention is read under writeMu, so that a pass that started
	// before a SetRetention cannot apply the old one after it.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	r := time.Duration(s.retention.Load())
	if r <= 0 {
		return nil
	}
	cutoff := dayOf(s.opts.now().Add(-r).UnixNano())
	s.mu.Lock()
	var drop []*partition
	for day, p := range s.parts {
		if day < cutoff {
			drop = append(drop, p)
			delete(s.parts, day)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range drop {
		n := p.spans()
		s.m.spans.Sub(float64(n))
		s.m.dropped.Inc()
		s.opts.Logger.Info("span store: dropped expired day", "day", dayName(p.day), "spans", n)
		errs = append(errs, p.close(), os.RemoveAll(p.dir))
	}
	return errors.Join(errs...)
}

// Write stores spans durably: when it returns nil every span is synced to
// disk. A span whose (trace id, span id) is already stored is skipped, so a
// redelivered batch is stored once.
func (s *Store) Write(ctx context.Context, spans []model.Span) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	type pending struct {
		p     *partition
		spans []*model.Span
		seen  map[model.TraceID][]model.SpanID // span ids of traces looked up in p's segments
	}
	byDay := make(map[int64]*pending)
	var days []int64
	batch := make(map[spanKey]struct{}, len(spans))
	dups := 0
	for i := range spans {
		sp := &spans[i]
		day := dayOf(sp.StartTime)
		pd := byDay[day]
		if pd == nil {
			p, err := s.partition(day)
			if err != nil {
				return err
			}
			pd = &pending{p: p, seen: map[model.TraceID][]model.SpanID{}}
			byDay[day] = pd
			days = append(days, day)
		}
		k := spanKey{sp.TraceID, sp.SpanID}
		if _, ok := batch[k]; ok {
			dups++
			continue
		}
		// Only writers change the index, and they hold writeMu.
		dup, err := pd.p.stored(k, pd.seen)
		if err != nil {
			return err
		}
		if dup {
			dups++
			continue
		}
		batch[k] = struct{}{}
		pd.spans = append(pd.spans, sp)
	}
	s.m.duplicates.Add(float64(dups))
	slices.Sort(days)
	type located struct {
		sp  *model.Span
		loc spanLoc
	}
	var locs []located
	for _, day := range days {
		pd := byDay[day]
		if len(pd.spans) == 0 {
			continue
		}
		p := pd.p
		locs = locs[:0]
		buf, err := appendBlocks(nil, pd.spans, func(sp *model.Span, l spanLoc) {
			l.off += p.size
			locs = append(locs, located{sp, l})
		})
		if err != nil {
			return err
		}
		if _, err := p.f.WriteAt(buf, p.size); err != nil {
			_ = p.f.Truncate(p.size)
			return fmt.Errorf("cannot append spans to %s: %w", p.dir, err)
		}
		if err := p.f.Sync(); err != nil {
			_ = p.f.Truncate(p.size)
			return fmt.Errorf("cannot sync spans to %s: %w", p.dir, err)
		}
		p.mu.Lock()
		for _, l := range locs {
			p.h.add(l.sp, l.loc)
		}
		p.mu.Unlock()
		p.size += int64(len(buf))
		if err := p.maybeSeal(); err != nil {
			// The spans are durable; the head is sealed by a later write
			// or at the next open.
			s.opts.Logger.Warn("span store: cannot seal index", "partition", p.dir, "err", err)
		}
		s.m.spans.Add(float64(len(pd.spans)))
		s.m.written.Add(float64(len(pd.spans)))
		s.m.bytes.Add(float64(len(buf)))
	}
	return nil
}

// partition returns the partition of day, creating it; the caller holds
// writeMu.
func (s *Store) partition(day int64) (*partition, error) {
	s.mu.RLock()
	p, closed := s.parts[day], s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if p != nil {
		return p, nil
	}
	p, _, err := openPartition(day, filepath.Join(s.opts.Dir, dayName(day)), s.opts.sealSpans, s.opts.Logger.Warn)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.parts[day] = p
	s.mu.Unlock()
	return p, nil
}

// DiskBytes is the size of the span files and their sealed indexes, for
// benchmarks and metrics.
func (s *Store) DiskBytes() int64 {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, p := range s.parts {
		n += p.size + p.indexBytes()
	}
	return n
}
