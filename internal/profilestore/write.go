package profilestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Write stores ps. It returns nil once every profile is durable (fsync'ed);
// a profile whose id is stored already is skipped, as is one older than
// retention. Profiles that fail validation or whose pprof bytes do not
// decode are reported in a *storage.RejectedError, once every other profile
// is durable.
func (s *Store) Write(ctx context.Context, ps []model.Profile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var rejected []storage.Rejection
	type item struct {
		p  *model.Profile
		pp *profile.Profile
	}
	byDay := map[int64][]item{}
	var days []int64
	for i := range ps {
		p := &ps[i]
		if err := p.Validate(); err != nil {
			rejected = append(rejected, storage.Rejection{Index: i, Reason: err.Error()})
			continue
		}
		pp, err := decodePprof(p.Pprof, s.opts.MaxDecodedBytes)
		if err != nil {
			rejected = append(rejected, storage.Rejection{Index: i, Reason: err.Error()})
			continue
		}
		d := dayOf(p.TimeNanos)
		if _, ok := byDay[d]; !ok {
			days = append(days, d)
		}
		byDay[d] = append(byDay[d], item{p, pp})
	}
	s.m.rejected.Add(float64(len(rejected)))

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	min := s.minDay()
	for _, d := range days {
		items := byDay[d]
		if d < min {
			s.m.tooOld.Add(float64(len(items)))
			continue
		}
		p, err := s.partitionForWrite(d)
		if err != nil {
			return err
		}
		batch := make([]*model.Profile, 0, len(items))
		pps := make([]*profile.Profile, 0, len(items))
		for _, it := range items {
			batch = append(batch, it.p)
			pps = append(pps, it.pp)
		}
		if err := s.writePartition(p, batch, pps); err != nil {
			return err
		}
	}
	if len(rejected) > 0 {
		return &storage.RejectedError{Items: rejected}
	}
	return nil
}

// partitionForWrite returns the partition of day, creating it.
func (s *Store) partitionForWrite(day int64) (*partition, error) {
	s.mu.RLock()
	p, ok := s.parts[day]
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if ok {
		return p, nil
	}
	p, err := openPartition(s.opts.Dir, day, true)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.parts[day] = p
	s.mu.Unlock()
	return p, nil
}

// writePartition appends the records of ps to p and syncs them, then makes
// them visible. On failure the dictionaries and the file are rolled back.
func (s *Store) writePartition(p *partition, ps []*model.Profile, pps []*profile.Profile) error {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return p.err
	}
	mark := p.dict.mark()
	buf := s.wbuf[:0]
	var metas []*profMeta
	seen := map[model.RecordID]bool{}
	for i, pr := range ps {
		if _, dup := p.byID[pr.ID]; dup || seen[pr.ID] {
			s.m.duplicates.Inc()
			continue
		}
		seen[pr.ID] = true
		start := len(buf)
		var m *profMeta
		buf, m = s.enc.encode(buf, p.dict, pr, pps[i])
		m.bOff += p.size + int64(start)
		m.series = nil
		metas = append(metas, m)
	}
	off := p.size
	p.mu.Unlock()
	s.wbuf = buf
	if len(metas) == 0 {
		return nil
	}

	_, err := p.f.WriteAt(buf, off)
	if err == nil {
		err = fsutil.Fdatasync(p.f)
	}
	if err == nil && s.opts.failWrite != nil {
		err = s.opts.failWrite()
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.dict.rollback(mark)
		err = fmt.Errorf("cannot write profiles to %s: %w", p.f.Name(), err)
		if terr := p.f.Truncate(off); terr != nil {
			p.err = errors.Join(errPartitionFailed, err, terr)
		}
		return err
	}
	p.size = off + int64(len(buf))
	j := 0
	for _, pr := range ps {
		if j < len(metas) && metas[j].id == pr.ID {
			metas[j].series = p.seriesFor(pr.Type, pr.Labels)
			p.commit(metas[j])
			j++
		}
	}
	s.m.written.Add(float64(len(metas)))
	return nil
}
