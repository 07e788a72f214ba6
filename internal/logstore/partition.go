package logstore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/model"
)

const (
	dataFileName    = "data"
	indexFileName   = "index"
	streamsFileName = "streams"
)

// Kinds of index records.
const (
	idxFlush    = 1 // blocks written from a head; seq = its last WAL segment
	idxReplace  = 2 // compaction: blocks replacing others
	idxSnapshot = 3 // rewritten index: every live block; seq = flushed seq
)

type streamInfo struct {
	labels       model.Labels
	minTs, maxTs int64
}

type extent struct{ off, len int64 }

// partition is one UTC day: an append-only data file of blocks, an
// append-only index of block metadata and an append-only streams file.
// Only the flusher and merger goroutines append to the files.
type partition struct {
	day  int32
	name string
	dir  string
	log  *slog.Logger

	// writeMu serialises the flusher and the merger appending to the files,
	// and guards what the index holds.
	writeMu                          sync.Mutex
	data, index, streamsF            *os.File
	dataSize, indexSize, streamsSize int64
	indexed                          map[int64]*blockMeta // live blocks in the index, by offset
	flushedSeq                       uint64               // rows of WAL segments up to this one are in the index

	// Published to queries and shared by the flusher and the merger;
	// guarded by Store.mu. blocks is copy-on-write when blocks are removed,
	// so a query's snapshot of it stays valid.
	blocks  []*blockMeta
	streams map[uint64]*streamInfo
	rows    int64

	small    map[uint64][]*blockMeta // blocks below tuning.smallRows, by stream
	l0Added  uint64                  // head blocks (S2) added so far...
	l0Merged uint64                  // ...and how many of them a sealed merge saw
	lastAdd  int64                   // when the flusher last added blocks, Unix ns

	deadEntries int // index entries of replaced blocks; merger-only

	refMu   sync.Mutex
	refs    int
	dropped bool // remove the directory when the last reference goes
	closing bool // close the files when the last reference goes
	punch   []extent
}

// openPartition opens or creates the partition of day under root and
// truncates whatever a crash left half-written.
func openPartition(root string, day int32, log *slog.Logger, smallRows int) (*partition, error) {
	name := dayName(day)
	p := &partition{
		day: day, name: name, dir: filepath.Join(root, name), log: log,
		streams: map[uint64]*streamInfo{}, small: map[uint64][]*blockMeta{}, indexed: map[int64]*blockMeta{},
	}
	if _, err := os.Stat(p.dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(p.dir, 0o750); err != nil {
			return nil, fmt.Errorf("cannot create partition %s: %w", p.dir, err)
		}
		if err := fsutil.SyncDir(root); err != nil {
			return nil, err
		}
	}
	var err error
	open := func(name string) *os.File {
		if err != nil {
			return nil
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(p.dir, name), os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
		return f
	}
	p.data, p.index, p.streamsF = open(dataFileName), open(indexFileName), open(streamsFileName)
	if err == nil {
		err = fsutil.SyncDir(p.dir)
	}
	if err == nil {
		err = p.recover(smallRows)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot open partition %s: %w", p.dir, err), p.closeFiles())
	}
	return p, nil
}

func (p *partition) recover(smallRows int) error {
	// Streams.
	b, err := readAll(p.streamsF)
	if err != nil {
		return err
	}
	off := 0
	for {
		payload, n, ok := nextRecord(b[off:])
		if !ok {
			break
		}
		d := binenc.NewReader(payload)
		sid := d.Uint64()
		ls := make(model.Labels, d.Count(2))
		for i := range ls {
			ls[i] = model.Label{Name: d.LenString(), Value: d.LenString()}
		}
		if d.Err() != nil {
			break
		}
		p.streams[sid] = &streamInfo{labels: ls, minTs: 1<<63 - 1, maxTs: -1 << 63}
		off += n
	}
	if err := p.truncate(p.streamsF, streamsFileName, int64(len(b)), int64(off)); err != nil {
		return err
	}
	p.streamsSize = int64(off)

	// Index, checked against the data file.
	st, err := p.data.Stat()
	if err != nil {
		return err
	}
	p.dataSize = st.Size()
	if b, err = readAll(p.index); err != nil {
		return err
	}
	live := map[int64]*blockMeta{}
	var order []*blockMeta
	var maxEnd int64
	off = 0
	for {
		payload, n, ok := nextRecord(b[off:])
		if !ok {
			break
		}
		rec, err := decodeIndexRecord(payload)
		if err != nil || !p.fits(rec) {
			break
		}
		if rec.kind == idxSnapshot {
			clear(live)
			order = order[:0]
		}
		for _, o := range rec.removed {
			if live[o] != nil {
				delete(live, o)
				p.deadEntries++
			}
		}
		for _, m := range rec.blocks {
			live[m.off] = m
			order = append(order, m)
			maxEnd = max(maxEnd, m.end())
		}
		if rec.kind != idxReplace {
			p.flushedSeq = max(p.flushedSeq, rec.seq)
		}
		off += n
	}
	if err := p.truncate(p.index, indexFileName, int64(len(b)), int64(off)); err != nil {
		return err
	}
	p.indexSize = int64(off)
	if err := p.truncate(p.data, dataFileName, p.dataSize, maxEnd); err != nil {
		return err
	}
	p.dataSize = maxEnd

	for _, m := range order {
		if live[m.off] == m {
			p.addBlock(m, smallRows)
		}
	}
	p.indexed = live
	// Give back the space of blocks replaced by a compaction whose hole
	// punching a crash or close interrupted.
	sorted := slices.Clone(p.blocks)
	slices.SortFunc(sorted, func(a, b *blockMeta) int { return cmp.Compare(a.off, b.off) })
	var prev int64
	for _, m := range append(sorted, &blockMeta{off: p.dataSize}) {
		if m.off-prev >= 4096 {
			p.punchHole(extent{prev, m.off - prev})
		}
		prev = m.end()
	}
	return nil
}

// fits reports whether every block of rec lies inside the data file and
// belongs to a known stream.
func (p *partition) fits(rec *indexRecord) bool {
	for _, m := range rec.blocks {
		if m.end() > p.dataSize || p.streams[m.sid] == nil || m.rows == 0 {
			return false
		}
	}
	return true
}

func (p *partition) truncate(f *os.File, name string, size, valid int64) error {
	if size <= valid {
		return nil
	}
	p.log.Warn("truncating torn tail of log store file", "partition", p.name, "file", name, "size", size, "valid", valid)
	if err := f.Truncate(valid); err != nil {
		return fmt.Errorf("cannot truncate %s: %w", name, err)
	}
	return f.Sync()
}

func readAll(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("cannot read %s: %w", f.Name(), err)
	}
	return b, nil
}

// addBlock publishes m; callers hold Store.mu (or own p exclusively).
func (p *partition) addBlock(m *blockMeta, smallRows int) {
	p.blocks = append(p.blocks, m)
	p.rows += int64(m.rows)
	if si := p.streams[m.sid]; si != nil {
		si.minTs = min(si.minTs, m.minTs)
		si.maxTs = max(si.maxTs, m.maxTs)
	}
	if int(m.rows) < smallRows {
		p.small[m.sid] = append(p.small[m.sid], m)
	}
	if m.flags&flagMerged == 0 {
		p.l0Added++
	}
}

// removeBlocks unpublishes blocks; callers hold Store.mu.
func (p *partition) removeBlocks(gone map[*blockMeta]bool) {
	kept := make([]*blockMeta, 0, len(p.blocks))
	for _, m := range p.blocks {
		if gone[m] {
			p.rows -= int64(m.rows)
		} else {
			kept = append(kept, m)
		}
	}
	p.blocks = kept
	for sid, ms := range p.small {
		ms = slices.DeleteFunc(ms, func(m *blockMeta) bool { return gone[m] })
		if len(ms) == 0 {
			delete(p.small, sid)
		} else {
			p.small[sid] = ms
		}
	}
}

// writeData writes encoded blocks at the end of the data file, returning
// the offset they start at. They are durable after syncData.
func (p *partition) writeData(buf []byte) (int64, error) {
	base := p.dataSize
	if _, err := p.data.WriteAt(buf, base); err != nil {
		return 0, fmt.Errorf("cannot write blocks to %s: %w", p.data.Name(), err)
	}
	p.dataSize += int64(len(buf))
	return base, nil
}

func (p *partition) syncData() error {
	if err := p.data.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", p.data.Name(), err)
	}
	return nil
}

func (p *partition) appendFile(f *os.File, size *int64, buf []byte) error {
	if _, err := f.WriteAt(buf, *size); err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", f.Name(), err)
	}
	*size += int64(len(buf))
	return nil
}

func appendStreamRecord(dst []byte, sid uint64, ls model.Labels) []byte {
	dst, start := beginRecord(dst)
	dst = binary.LittleEndian.AppendUint64(dst, sid)
	dst = binary.AppendUvarint(dst, uint64(len(ls)))
	for _, l := range ls {
		dst = binenc.AppendString(dst, l.Name)
		dst = binenc.AppendString(dst, l.Value)
	}
	return finishRecord(dst, start)
}

// readBlock reads and checks a block's bloom (bloom=true) or columns, into
// buf if it is big enough.
func (p *partition) readBlock(m *blockMeta, bloom bool, buf []byte) ([]byte, error) {
	off, n, sum := m.off+int64(m.bloomLen), m.colsLen, m.colsCRC
	if bloom {
		off, n, sum = m.off, m.bloomLen, m.bloomCRC
	}
	b := buf[:0]
	if cap(b) < int(n) {
		b = make([]byte, n)
	}
	b = b[:n]
	if _, err := p.data.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("cannot read block at %d of %s: %w", m.off, p.data.Name(), err)
	}
	if crc(b) != sum {
		return nil, fmt.Errorf("block at %d of %s: checksum mismatch: %w", m.off, p.data.Name(), errCorrupt)
	}
	return b, nil
}

func (p *partition) acquire() {
	p.refMu.Lock()
	p.refs++
	p.refMu.Unlock()
}

func (p *partition) release() {
	p.refMu.Lock()
	defer p.refMu.Unlock()
	p.refs--
	if p.refs == 0 {
		p.idleLocked()
	}
}

// retire punches out replaced blocks once no query can still read them.
func (p *partition) retire(exts []extent) {
	p.refMu.Lock()
	defer p.refMu.Unlock()
	p.punch = append(p.punch, exts...)
	if p.refs == 0 {
		p.idleLocked()
	}
}

func (p *partition) idleLocked() {
	switch {
	case p.dropped:
		_ = p.closeFiles() // the partition is removed next
		if err := os.RemoveAll(p.dir); err != nil {
			p.log.Error("cannot remove log partition", "partition", p.dir, "err", err)
		}
	case p.closing:
		_ = p.closeFiles() // its data was synced when written; a query held the files past Close
	default:
		for _, e := range p.punch {
			p.punchHole(e)
		}
		p.punch = nil
	}
}

func (p *partition) punchHole(e extent) {
	if err := punchHole(p.data, e.off, e.len); err != nil && !errors.Is(err, errPunchUnsupported) {
		p.log.Warn("cannot free space of replaced log blocks", "partition", p.name, "err", err)
	}
}

// drop removes the partition from disk as soon as no query reads it.
func (p *partition) drop() error {
	p.refMu.Lock()
	defer p.refMu.Unlock()
	p.dropped = true
	if p.refs == 0 {
		p.idleLocked()
	}
	return nil
}

// close closes the files as soon as no query reads them.
func (p *partition) close() error {
	p.refMu.Lock()
	defer p.refMu.Unlock()
	p.closing = true
	if p.refs == 0 {
		for _, e := range p.punch {
			p.punchHole(e)
		}
		p.punch = nil
		return p.closeFiles()
	}
	return nil
}

func (p *partition) closeFiles() error {
	var errs []error
	for _, f := range []**os.File{&p.data, &p.index, &p.streamsF} {
		if *f != nil {
			errs = append(errs, (*f).Close())
			*f = nil
		}
	}
	return errors.Join(errs...)
}

func (p *partition) diskBytes() int64 {
	p.refMu.Lock()
	defer p.refMu.Unlock()
	var n int64
	for _, f := range []*os.File{p.data, p.index, p.streamsF} {
		if f != nil {
			if st, err := f.Stat(); err == nil {
				n += allocatedBytes(st)
			}
		}
	}
	return n
}
