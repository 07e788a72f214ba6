package profilestore

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/model"
)

const (
	dayFormat    = "2006-01-02"
	dataFileName = "profiles"
	nsPerDay     = int64(24 * time.Hour)
)

// series is one profile type and label set within a partition.
type series struct {
	typ      string
	labels   model.Labels
	profiles []*profMeta // in time order
}

// partition holds the profiles whose time falls on one UTC day: one file of
// records, the dictionaries of their symbols and stacks, and the index.
type partition struct {
	day  int64 // days since the Unix epoch
	name string
	dir  string
	f    *os.File

	// mu guards everything below. Writers hold it to intern and commit;
	// readers hold it shared for a whole query of the partition.
	mu     sync.RWMutex
	size   int64 // bytes of the file that hold committed records
	dict   *dict
	series map[string]*series
	byID   map[model.RecordID]*profMeta
	count  int
	err    error // sticky: a failed write that could not be undone
	gone   bool  // removed by retention; queries that still hold it skip it
}

func dayOf(ns int64) int64 {
	d := ns / nsPerDay
	if ns < 0 && ns%nsPerDay != 0 {
		d--
	}
	return d
}

func dayName(day int64) string { return time.Unix(day*86400, 0).UTC().Format(dayFormat) }

func seriesKey(typ string, ls model.Labels) string {
	var b strings.Builder
	b.WriteString(typ)
	for _, l := range ls {
		b.WriteByte(0)
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
	}
	return b.String()
}

// openPartition opens (creating it when create) the partition of day in
// root, replaying its file and truncating a torn tail.
func openPartition(root string, day int64, create bool) (*partition, error) {
	p := &partition{day: day, name: dayName(day), dict: newDict(), series: map[string]*series{}, byID: map[model.RecordID]*profMeta{}}
	p.dir = filepath.Join(root, p.name)
	path := filepath.Join(p.dir, dataFileName)
	if create {
		if err := os.MkdirAll(p.dir, 0o750); err != nil {
			return nil, fmt.Errorf("cannot create profile partition %s: %w", p.dir, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot open profile partition %s: %w", path, err)
	}
	p.f = f
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close() // the open error is the one to report
		return nil, fmt.Errorf("cannot stat %s: %w", path, err)
	}
	if fi.Size() < int64(len(fileMagic)) {
		// New, or torn before its header was durable.
		if err := p.writeHeader(root); err != nil {
			_ = f.Close() // the open error is the one to report
			return nil, err
		}
		return p, nil
	}
	if err := p.replay(fi.Size()); err != nil {
		_ = f.Close() // the open error is the one to report
		return nil, fmt.Errorf("cannot open profile partition %s: %w", path, err)
	}
	return p, nil
}

func (p *partition) writeHeader(root string) error {
	if err := p.f.Truncate(0); err != nil {
		return fmt.Errorf("cannot truncate %s: %w", p.f.Name(), err)
	}
	if _, err := p.f.WriteAt([]byte(fileMagic), 0); err != nil {
		return fmt.Errorf("cannot write %s: %w", p.f.Name(), err)
	}
	if err := fsutil.Fdatasync(p.f); err != nil {
		return fmt.Errorf("cannot sync %s: %w", p.f.Name(), err)
	}
	if err := fsutil.SyncDir(p.dir); err != nil {
		return err
	}
	if err := fsutil.SyncDir(root); err != nil {
		return err
	}
	p.size = int64(len(fileMagic))
	return nil
}

// replay reads every record, rebuilding the dictionaries and the index.
// The first record that is cut short, fails its CRC or does not decode
// ends the file: what follows is truncated.
func (p *partition) replay(fileSize int64) error {
	br := bufio.NewReaderSize(io.NewSectionReader(p.f, 0, fileSize), 1<<20)
	magic := make([]byte, len(fileMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return err
	}
	if string(magic) != fileMagic {
		if string(magic[:6]) == fileMagic[:6] {
			return fmt.Errorf("format version %d, this Vigil reads version %d", magic[7], fileMagic[7])
		}
		return fmt.Errorf("not a profile partition file (magic %q)", magic)
	}
	off := int64(len(fileMagic))
	var hdr [recordHeader]byte
	var payload, a []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		n, sum, ok := parseRecordHeader(hdr[:])
		if !ok || int64(n) > fileSize-off-recordHeader {
			break
		}
		payload = grow(payload, int(n))
		if _, err := io.ReadFull(br, payload); err != nil {
			break
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			break
		}
		m, err := p.applyRecord(payload, off, &a)
		if err != nil {
			break
		}
		p.commit(m)
		off += recordHeader + int64(n)
	}
	p.size = off
	if off < fileSize {
		if err := p.f.Truncate(off); err != nil {
			return fmt.Errorf("cannot truncate the torn tail at %d: %w", off, err)
		}
		if err := fsutil.Fdatasync(p.f); err != nil {
			return err
		}
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// applyRecord decodes a record's section A into the dictionaries; a record
// that does not decode leaves them as they were.
func (p *partition) applyRecord(payload []byte, off int64, scratch *[]byte) (*profMeta, error) {
	r := binenc.NewReader(payload)
	if r.Byte() != kindProfile {
		return nil, fmt.Errorf("%w: unknown record kind", errCorrupt)
	}
	za := r.LenBytes()
	if r.Err() != nil {
		return nil, fmt.Errorf("%w: section A cut short", errCorrupt)
	}
	a, err := zdec.DecodeAll(za, (*scratch)[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: section A: %v", errCorrupt, err)
	}
	*scratch = a
	mark := p.dict.mark()
	m, typ, ls, err := decodeSectionA(a, p.dict)
	if err != nil {
		p.dict.rollback(mark)
		return nil, err
	}
	if _, dup := p.byID[m.id]; dup {
		p.dict.rollback(mark)
		return nil, fmt.Errorf("%w: profile %s twice", errCorrupt, m.id)
	}
	m.bOff = off + recordHeader + int64(len(payload)-r.Len())
	m.bLen = int64(r.Len())
	m.series = p.seriesFor(typ, ls)
	return m, nil
}

// seriesFor returns the series of typ and ls, adding it when new.
func (p *partition) seriesFor(typ string, ls model.Labels) *series {
	k := seriesKey(typ, ls)
	s, ok := p.series[k]
	if !ok {
		s = &series{typ: typ, labels: slices.Clone(ls)}
		p.series[k] = s
	}
	return s
}

// commit adds a durable profile to the index.
func (p *partition) commit(m *profMeta) {
	s := m.series
	i := sort.Search(len(s.profiles), func(i int) bool { return s.profiles[i].timeNanos > m.timeNanos })
	s.profiles = append(s.profiles, nil)
	copy(s.profiles[i+1:], s.profiles[i:])
	s.profiles[i] = m
	p.byID[m.id] = m
	p.count++
}

// readSamples reads and decompresses section B of m into dst.
func (p *partition) readSamples(m *profMeta, raw, dst []byte) ([]byte, []byte, error) {
	raw = grow(raw, int(m.bLen))
	if _, err := p.f.ReadAt(raw, m.bOff); err != nil {
		return raw, dst, fmt.Errorf("cannot read profile %s from %s: %w", m.id, p.f.Name(), err)
	}
	out, err := zdec.DecodeAll(raw, dst[:0])
	if err != nil {
		return raw, dst, fmt.Errorf("%w: profile %s in %s: %v", errCorrupt, m.id, p.f.Name(), err)
	}
	return raw, out, nil
}

func (p *partition) close() error {
	return p.f.Close()
}

// errPartitionFailed wraps the sticky error of a partition.
var errPartitionFailed = errors.New("profile partition failed")
