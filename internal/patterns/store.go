package patterns

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Backend is a log store that also keeps mined patterns, and answers the
// index endpoints from its stream statistics.
type Backend interface {
	storage.LogWriter
	storage.LogReader
	storage.StreamStatsReader
	storage.PatternWriter
	storage.PatternReader
	Run(ctx context.Context) error
	Close() error
}

// Store is a log store whose writes are mined: it mines every batch the
// backend accepted, flushes the patterns to the backend every
// FlushInterval and at Close, and reads patterns from the backend and from
// what it has not flushed yet. Everything else is the backend's.
type Store struct {
	Backend
	miner *Miner

	flushMu   sync.Mutex // one flush at a time
	closeOnce sync.Once
	closeErr  error
}

var _ Backend = (*Store)(nil)

// NewStore returns b with mining at ingest.
func NewStore(b Backend, opts Options) *Store {
	return &Store{Backend: b, miner: NewMiner(opts)}
}

// Write writes recs to the backend and mines them once it accepted them
// (every record but those a *storage.RejectedError names).
func (s *Store) Write(ctx context.Context, recs []model.LogRecord) error {
	err := s.Backend.Write(ctx, recs)
	var rej *storage.RejectedError
	switch {
	case err == nil:
		s.miner.Observe(recs)
	case errors.As(err, &rej):
		refused := make(map[int]bool, len(rej.Items))
		for _, it := range rej.Items {
			refused[it.Index] = true
		}
		kept := make([]model.LogRecord, 0, len(recs)-len(refused))
		for i := range recs {
			if !refused[i] {
				kept = append(kept, recs[i])
			}
		}
		s.miner.Observe(kept)
	}
	return err
}

// ReadPatterns reads the backend's patterns, then those not flushed yet.
func (s *Store) ReadPatterns(ctx context.Context, start, end int64, ms []*model.LabelMatcher, fn func(*storage.PatternRecord)) error {
	if err := s.Backend.ReadPatterns(ctx, start, end, ms, fn); err != nil {
		return err
	}
	s.miner.pending(start, end, ms, fn)
	return nil
}

// Run runs the backend and flushes the mined patterns every FlushInterval
// until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.Backend.Run(ctx) }()
	t := time.NewTicker(s.miner.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-done
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				s.miner.opts.Logger.Warn("cannot flush mined log patterns; retrying at the next flush", "err", err)
			}
		}
	}
}

// Flush writes the patterns mined since the last flush to the backend. On
// failure they are kept for the next flush (within Options.MaxRetained).
func (s *Store) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	recs := s.miner.take()
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	err := s.Backend.WritePatterns(ctx, recs)
	s.miner.m.flushSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		s.miner.m.flushErrors.Inc()
		s.miner.retain(recs)
		return err
	}
	s.miner.m.flushed.Add(float64(len(recs)))
	return nil
}

// Close flushes the mined patterns, then closes the backend.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.closeErr = errors.Join(s.Flush(ctx), s.Backend.Close())
	})
	return s.closeErr
}
