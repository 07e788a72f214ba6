package dumpstore

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/vigilhq/vigil/internal/fsutil"
	"github.com/vigilhq/vigil/internal/model"
)

// The journal format (docs/format/dumpstore.md): a 16-byte header, then
// records. A record is u32 body length, u32 CRC-32C of the body, body; the
// body is entries, each a kind byte, a u32 length and a JSON document: 'E'
// an event (model.Dump), 'I' the new state of an issue (model.Issue).
// Integers are little-endian.
const (
	journalSuffix  = ".dumps"
	journalMagic   = "VIGILDMP"
	journalVersion = 1
	headerSize     = 16
	recordHead     = 8
	entryHead      = 5
	// maxRecordBytes bounds one record, so that a corrupt length cannot
	// make Open allocate without limit.
	maxRecordBytes = 1 << 30
	kindEvent      = 'E'
	kindIssue      = 'I'
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journal is one day's append-only file.
type journal struct {
	day, path string
	mu        sync.Mutex // guards f against close during reads
	f         *os.File
	size      int64
}

// entryRef is an event entry found while replaying a journal.
type entryRef struct{ meta *eventMeta }

func header() []byte {
	h := make([]byte, headerSize)
	copy(h, journalMagic)
	binary.LittleEndian.PutUint32(h[8:], journalVersion)
	return h
}

// createJournal creates an empty journal durably.
func createJournal(path, day string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot create dump journal: %w", err)
	}
	if _, err := f.Write(header()); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot write dump journal %s: %w", path, err), f.Close())
	}
	if err := errors.Join(fsutil.Fdatasync(f), fsutil.SyncDir(dirOf(path))); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot sync dump journal %s: %w", path, err), f.Close())
	}
	return &journal{day: day, path: path, f: f, size: headerSize}, nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i]
		}
	}
	return "."
}

// openJournal opens an existing journal and calls apply for each record,
// in order. A torn or corrupt tail is cut off.
func openJournal(path, day string, apply func(day string, events []entryRef, issues []model.Issue)) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot open dump journal: %w", err)
	}
	j := &journal{day: day, path: path, f: f}
	fail := func(err error) (*journal, error) { return nil, errors.Join(err, f.Close()) }
	r := bufio.NewReaderSize(f, 1<<20)
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(r, h); err != nil || string(h[:8]) != journalMagic {
		return fail(fmt.Errorf("dump journal %s: not a dump journal (bad header)", path))
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != journalVersion {
		return fail(fmt.Errorf("dump journal %s: format version %d; this Vigil reads version %d", path, v, journalVersion))
	}
	off := int64(headerSize)
	var head [recordHead]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			break // end, or a torn record head
		}
		n := binary.LittleEndian.Uint32(head[:4])
		if n > maxRecordBytes {
			break
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil || crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(head[4:]) {
			break
		}
		events, issues, err := decodeBody(body, off+recordHead)
		if err != nil {
			return fail(fmt.Errorf("dump journal %s: record at offset %d: %w", path, off, err))
		}
		apply(day, events, issues)
		off += recordHead + int64(n)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if st.Size() > off {
		// A write that was never acknowledged: its fsync did not return.
		if err := f.Truncate(off); err != nil {
			return fail(fmt.Errorf("cannot cut the torn tail of dump journal %s: %w", path, err))
		}
		if err := fsutil.Fdatasync(f); err != nil {
			return fail(err)
		}
	}
	j.size = off
	return j, nil
}

// decodeBody decodes a record body found at file offset base.
func decodeBody(body []byte, base int64) ([]entryRef, []model.Issue, error) {
	var events []entryRef
	var issues []model.Issue
	for p := 0; p < len(body); {
		if len(body)-p < entryHead {
			return nil, nil, errors.New("truncated entry")
		}
		kind, n := body[p], int(binary.LittleEndian.Uint32(body[p+1:]))
		p += entryHead
		if n > len(body)-p {
			return nil, nil, errors.New("entry longer than its record")
		}
		doc := body[p : p+n]
		switch kind {
		case kindEvent:
			var d model.Dump
			if err := json.Unmarshal(doc, &d); err != nil {
				return nil, nil, fmt.Errorf("event: %w", err)
			}
			events = append(events, entryRef{meta: newEventMeta(&d, base+int64(p), n)})
		case kindIssue:
			var is model.Issue
			if err := json.Unmarshal(doc, &is); err != nil {
				return nil, nil, fmt.Errorf("issue: %w", err)
			}
			issues = append(issues, is)
		default:
			return nil, nil, fmt.Errorf("unknown entry kind %q", kind)
		}
		p += n
	}
	return events, issues, nil
}

// append writes one record of events (encoded) and issues durably and
// returns the file offset of each event's JSON.
func (j *journal) append(events [][]byte, issues []model.Issue) ([]int64, error) {
	size := recordHead
	for _, e := range events {
		size += entryHead + len(e)
	}
	docs := make([][]byte, len(issues))
	for i := range issues {
		b, err := json.Marshal(&issues[i])
		if err != nil {
			return nil, err
		}
		docs[i] = b
		size += entryHead + len(b)
	}
	if size-recordHead > maxRecordBytes {
		return nil, fmt.Errorf("a dump store write of %d bytes is larger than a journal record holds (%d bytes): write fewer events at once", size, maxRecordBytes)
	}
	rec := make([]byte, recordHead, size)
	offs := make([]int64, len(events))
	add := func(kind byte, doc []byte) int64 {
		rec = append(rec, kind, 0, 0, 0, 0)
		binary.LittleEndian.PutUint32(rec[len(rec)-4:], uint32(len(doc)))
		at := j.size + int64(len(rec))
		rec = append(rec, doc...)
		return at
	}
	for i, e := range events {
		offs[i] = add(kindEvent, e)
	}
	for _, d := range docs {
		add(kindIssue, d)
	}
	binary.LittleEndian.PutUint32(rec, uint32(len(rec)-recordHead))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[recordHead:], crcTable))
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil, ErrClosed
	}
	if _, err := j.f.WriteAt(rec, j.size); err != nil {
		_ = j.f.Truncate(j.size)
		return nil, fmt.Errorf("cannot append to dump journal %s: %w", j.path, err)
	}
	if err := fsutil.Fdatasync(j.f); err != nil {
		// Whether the record reached the disk is unknown: cut it, so that
		// the retried write is the only copy.
		_ = j.f.Truncate(j.size)
		return nil, fmt.Errorf("cannot sync dump journal %s: %w", j.path, err)
	}
	j.size += int64(len(rec))
	return offs, nil
}

// read returns n bytes at off.
func (j *journal) read(off int64, n int) ([]byte, error) {
	j.mu.Lock()
	f := j.f
	j.mu.Unlock()
	if f == nil {
		return nil, ErrClosed
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("cannot read dump journal %s at %d: %w", j.path, off, err)
	}
	return b, nil
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
