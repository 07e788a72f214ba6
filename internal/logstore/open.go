package logstore

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// openPartitions opens the day directories of the data directory, removing
// those already past retention.
func (s *Store) openPartitions() error {
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("cannot list log store directory: %w", err)
	}
	minDay := s.minDay.Load()
	for _, e := range ents {
		t, err := time.Parse(time.DateOnly, e.Name())
		if !e.IsDir() || err != nil {
			continue
		}
		day := dayOf(t.UnixNano())
		if day < minDay {
			s.log.Info("dropping log partition past retention", "partition", e.Name())
			if err := os.RemoveAll(s.dirPath(e.Name())); err != nil {
				return fmt.Errorf("cannot remove expired partition: %w", err)
			}
			continue
		}
		p, err := openPartition(s.opts.Dir, day, s.log, s.tune.smallRows)
		if err != nil {
			return err
		}
		s.parts[day] = p
	}
	return nil
}

func (s *Store) dirPath(name string) string { return s.opts.Dir + string(os.PathSeparator) + name }

// rebuildDedup loads the ids of the most recently written blocks into the
// deduplication set, up to its two generations.
func (s *Store) rebuildDedup() error {
	type ref struct {
		p *partition
		m *blockMeta
	}
	var refs []ref
	for _, p := range s.parts {
		for _, m := range p.blocks {
			refs = append(refs, ref{p, m})
		}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		return cmp.Or(cmp.Compare(b.m.seq, a.m.seq), cmp.Compare(b.m.maxTs, a.m.maxTs))
	})
	var keys []uint64 // newest first
	for _, r := range refs {
		if len(keys) >= 2*s.tune.dedupGen {
			break
		}
		ids, err := r.p.readIDs(r.m)
		if err != nil {
			s.log.Warn("cannot read ids of log block to rebuild deduplication", "partition", r.p.name, "offset", r.m.off, "err", err)
			continue
		}
		for i := len(ids)/16 - 1; i >= 0; i-- {
			var id model.RecordID
			copy(id[:], ids[16*i:])
			if !id.IsZero() {
				keys = append(keys, idKey(&id))
			}
		}
	}
	for i := len(keys) - 1; i >= 0; i-- {
		s.dedup.seen(keys[i])
	}
	return nil
}

// readIDs reads only the id column of a block.
func (p *partition) readIDs(m *blockMeta) ([]byte, error) {
	hdr := make([]byte, min(int(m.colsLen), 4096))
	colsOff := m.off + int64(m.bloomLen)
	if _, err := p.data.ReadAt(hdr, colsOff); err != nil {
		return nil, err
	}
	b, err := parseColsHeader(hdr, int(m.colsLen))
	if err != nil {
		return nil, err
	}
	r := b.simple[colID]
	if r.codec != codecRaw || r.rawLen != 16*b.rows {
		return nil, errCorrupt
	}
	ids := make([]byte, r.rawLen)
	if _, err := p.data.ReadAt(ids, colsOff+int64(r.off)); err != nil {
		return nil, err
	}
	return ids, nil
}

// replayWAL puts the rows of the WAL segments left by a crash back into
// blocks, skipping those a partition already holds, and removes the
// segments. It returns the sequence number for the next segment.
func (s *Store) replayWAL() (uint64, error) {
	dir := s.dirPath(walDirName)
	seqs, err := listSegments(dir)
	if err != nil {
		return 0, err
	}
	var last uint64
	for _, p := range s.parts {
		last = max(last, p.flushedSeq)
	}
	h := newHead(nil, nil)
	minDay := s.minDay.Load()
	for _, seq := range seqs {
		last = max(last, seq)
		torn, err := readSegment(segmentPath(dir, seq), seq, func(recs []model.LogRecord) error {
			for i := range recs {
				r := &recs[i]
				if !r.ID.IsZero() {
					s.dedup.seen(idKey(&r.ID))
				}
				k := s.streamKeyOf(r)
				if p := s.parts[k.day]; k.day < minDay || (p != nil && p.flushedSeq >= seq) {
					continue
				}
				h.insert(k, r, &row{
					ts: r.Timestamp, obs: r.ObservedTimestamp, id: r.ID, trunc: r.Truncated,
					msg: r.Message, trace: r.TraceID, span: r.SpanID, attrs: string(appendAttrs(nil, r.Attributes)),
				})
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if torn {
			s.log.Warn("truncated torn tail of WAL segment", "segment", seq)
		}
	}
	if h.rows > 0 {
		s.log.Info("replaying log store WAL after unclean shutdown", "rows", h.rows, "segments", len(seqs))
		h.seq = last
		s.frozen = []*head{h}
		if err := s.flushFrozen(); err != nil {
			return 0, err
		}
	}
	spare := filepath.Join(dir, spareName)
	_, err = os.Stat(spare)
	haveSpare := err == nil
	for _, seq := range seqs {
		path := segmentPath(dir, seq)
		if !haveSpare && os.Rename(path, spare) == nil {
			haveSpare = true
			continue
		}
		if err := os.Remove(path); err != nil {
			return 0, fmt.Errorf("cannot remove replayed WAL segment: %w", err)
		}
	}
	return last + 1, nil
}
