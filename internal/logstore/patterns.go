package logstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Mined patterns (storage.PatternWriter) are kept in files next to the
// rows: <dir>/<YYYY-MM-DD>/patterns/<flush>.vpat, one file per flush and
// day holding the buckets of that day (docs/format/patterns.md). They go
// with their day's partition when retention drops it.

const (
	patternsDirName = "patterns"
	patternsExt     = ".vpat"
	// maxCachedPatternRecords bounds the decoded records kept in memory
	// for queries; files beyond it are decoded on every read.
	maxCachedPatternRecords = 4 << 20
)

// patternFiles caches decoded pattern files: they never change once
// written.
type patternFiles struct {
	seq atomic.Uint64 // names files written in the same nanosecond apart

	mu      sync.Mutex
	cache   map[string]*patternFile // by path
	records int                     // in cache
}

var (
	_ storage.PatternWriter = (*Store)(nil)
	_ storage.PatternReader = (*Store)(nil)
)

// WritePatterns writes recs durably, one file per day their buckets fall
// in. Buckets of days past retention are skipped.
func (s *Store) WritePatterns(ctx context.Context, recs []storage.PatternRecord) error {
	byDay := map[int32][]storage.PatternRecord{}
	minDay := s.minDay.Load()
	for _, r := range recs {
		storage.SplitPatternDays(r.Buckets, func(day int64, bs []storage.PatternCount) {
			if int32(day) >= minDay {
				part := r
				part.Buckets = bs
				byDay[int32(day)] = append(byDay[int32(day)], part)
			}
		})
	}
	name := strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.FormatUint(s.pat.seq.Add(1), 10) + patternsExt
	for day, rs := range byDay {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(s.opts.Dir, dayName(day), patternsDirName)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("cannot create pattern directory: %w", err)
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), encodePatterns(rs), 0o600); err != nil {
			return fmt.Errorf("cannot write pattern file: %w", err)
		}
	}
	return nil
}

// ReadPatterns reads the pattern files of the days of [start, end).
func (s *Store) ReadPatterns(ctx context.Context, start, end int64, ms []*model.LabelMatcher, fn func(*storage.PatternRecord)) error {
	if end <= start {
		return nil
	}
	first, last := max(dayOf(start), s.minDay.Load()), dayOf(end-1)
	for day := first; day <= last; day++ {
		dir := filepath.Join(s.opts.Dir, dayName(day), patternsDirName)
		ents, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot list pattern files: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), patternsExt) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			f, err := s.pat.file(filepath.Join(dir, e.Name()))
			if err != nil {
				// A damaged file costs its own patterns, not the query's.
				s.log.Warn("skipping unreadable pattern file", "file", filepath.Join(dir, e.Name()), "err", err)
				continue
			}
			f.each(start, end, ms, fn)
		}
	}
	return nil
}

func (pf *patternFiles) file(path string) (*patternFile, error) {
	pf.mu.Lock()
	f := pf.cache[path]
	pf.mu.Unlock()
	if f != nil {
		return f, nil
	}
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, err
	}
	f, err = decodePatterns(b)
	if err != nil {
		return nil, err
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.cache == nil {
		pf.cache = map[string]*patternFile{}
	}
	if _, ok := pf.cache[path]; !ok && pf.records+len(f.records) <= maxCachedPatternRecords {
		pf.cache[path] = f
		pf.records += len(f.records)
	}
	return f, nil
}

// forget drops the cached files under dir.
func (pf *patternFiles) forget(dir string) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	for p, f := range pf.cache {
		if strings.HasPrefix(p, dir+string(os.PathSeparator)) {
			delete(pf.cache, p)
			pf.records -= len(f.records)
		}
	}
}

// retainPatterns removes the pattern files of days before day, whether or
// not their day has a partition.
func (s *Store) retainPatterns(day int32) error {
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("cannot list log store directory: %w", err)
	}
	for _, e := range ents {
		t, err := time.Parse(time.DateOnly, e.Name())
		if !e.IsDir() || err != nil || dayOf(t.UnixNano()) >= day {
			continue
		}
		dir := filepath.Join(s.opts.Dir, e.Name(), patternsDirName)
		s.pat.forget(dir)
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("cannot remove expired pattern files: %w", err)
		}
	}
	return nil
}
