package diskqueue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Every segment file starts with a header: segmentMagic, 7 bytes naming
// the format, and a version byte (version1 or version2, see record.go). The
// header is not part of the logical offset space: the record at file offset
// segmentHeaderSize+k of segment B has position B+k. The segments of one
// directory may have different versions: a directory written by an earlier
// release holds version-1 segments, and the first producer of this one
// starts a version-2 segment after them.
var segmentMagic = [segmentHeaderSize - 1]byte{'V', 'I', 'G', 'Q', 'S', 'E', 'G'}

// segmentHeader returns the header of a segment of the given version.
func segmentHeader(version byte) [segmentHeaderSize]byte {
	var hdr [segmentHeaderSize]byte
	copy(hdr[:], segmentMagic[:])
	hdr[segmentHeaderSize-1] = version
	return hdr
}

// parseSegmentHeader returns the version a segment header names, and false
// when it is not the header of a segment this code reads.
func parseSegmentHeader(hdr [segmentHeaderSize]byte) (byte, bool) {
	if [segmentHeaderSize - 1]byte(hdr[:segmentHeaderSize-1]) != segmentMagic {
		return 0, false
	}
	v := hdr[segmentHeaderSize-1]
	return v, v == version1 || v == version2
}

const (
	segmentHeaderSize = 8
	segmentSuffix     = ".seg"
	// segmentNameDigits is wide enough for any non-negative int64.
	segmentNameDigits = 20
)

// segmentName returns the file name of the segment starting at base.
func segmentName(base int64) string {
	return fmt.Sprintf("%0*d%s", segmentNameDigits, base, segmentSuffix)
}

// parseSegmentName returns the base offset encoded in a segment file name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != segmentNameDigits {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// listSegments returns the base offsets of the segments in dir, ascending.
func listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list queue directory %s: %w", dir, err)
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// segmentFor returns the base of the segment that holds pos: the greatest
// base not above pos. ok is false when every segment starts after pos.
func segmentFor(bases []int64, pos int64) (base int64, ok bool) {
	i, found := slices.BinarySearch(bases, pos)
	if found {
		return bases[i], true
	}
	if i == 0 {
		return 0, false
	}
	return bases[i-1], true
}

// checkSegmentHeader reads and checks the header of an open segment and
// returns its version.
func checkSegmentHeader(f *os.File) (byte, error) {
	var hdr [segmentHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("cannot read header of segment %s: %w", f.Name(), err)
	}
	return checkHeader(f.Name(), hdr)
}

func checkHeader(name string, hdr [segmentHeaderSize]byte) (byte, error) {
	v, ok := parseSegmentHeader(hdr)
	if !ok {
		return 0, fmt.Errorf("segment %s has header %q; want %q and version 1 or 2 (not a Vigil queue segment, or a newer format)", name, hdr[:], segmentMagic[:])
	}
	return v, nil
}

// createSegment creates the segment starting at base, writes its header and
// makes both file and directory entry durable before returning, so that a
// record written to it never outlives its file after a crash.
func createSegment(dir string, dirFile *os.File, base int64, sync syncFunc) (*os.File, error) {
	path := filepath.Join(dir, segmentName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot create segment %s: %w", path, err)
	}
	hdr := segmentHeader(version2)
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot write header of segment %s: %w", path, err), f.Close())
	}
	if err := sync(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot sync segment %s: %w", path, err), f.Close())
	}
	if err := sync(dirFile); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot sync queue directory %s: %w", dir, err), f.Close())
	}
	return f, nil
}

// tailState is what recoverTail found in the last segment.
type tailState struct {
	f       *os.File
	version byte  // of the segment's records
	size    int64 // bytes of valid records after the header
	records int
	torn    int64 // bytes removed from the end of the file
}

// recoverTail opens the last segment for appending. It keeps the longest
// prefix of valid records, truncates anything after it (a record torn by a
// crash, or garbage), and syncs the file, so that every record it reports is
// durable. A segment whose header was never completely written is treated
// as empty and started afresh as version 2; a version-1 segment keeps its
// version (the producer appends nothing more to one that holds records).
func recoverTail(path string, sync syncFunc) (tailState, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return tailState{}, fmt.Errorf("cannot open segment %s: %w", path, err)
	}
	st, err := recoverOpen(f, sync)
	if err != nil {
		return tailState{}, errors.Join(err, f.Close())
	}
	return st, nil
}

func recoverOpen(f *os.File, sync syncFunc) (tailState, error) {
	fi, err := f.Stat()
	if err != nil {
		return tailState{}, fmt.Errorf("cannot stat segment %s: %w", f.Name(), err)
	}
	st := tailState{f: f}
	var hdr [segmentHeaderSize]byte
	n, err := f.ReadAt(hdr[:], 0)
	version, known := parseSegmentHeader(hdr)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return tailState{}, fmt.Errorf("cannot read header of segment %s: %w", f.Name(), err)
	case n < segmentHeaderSize && bytes.HasPrefix(segmentMagic[:], hdr[:min(n, len(segmentMagic))]) || hdr == [segmentHeaderSize]byte{}:
		// Crashed while creating the segment: start it afresh.
		st.torn = fi.Size()
		if err := f.Truncate(0); err != nil {
			return tailState{}, fmt.Errorf("cannot truncate segment %s: %w", f.Name(), err)
		}
		fresh := segmentHeader(version2)
		if _, err := f.WriteAt(fresh[:], 0); err != nil {
			return tailState{}, fmt.Errorf("cannot write header of segment %s: %w", f.Name(), err)
		}
		st.version = version2
	case !known:
		_, err := checkHeader(f.Name(), hdr)
		return tailState{}, err
	default:
		st.version = version
		end, records, err := scanRecords(version, io.NewSectionReader(f, segmentHeaderSize, fi.Size()-segmentHeaderSize))
		if err != nil {
			return tailState{}, fmt.Errorf("cannot read segment %s: %w", f.Name(), err)
		}
		st.size, st.records = end, records
		if fileEnd := segmentHeaderSize + end; fileEnd < fi.Size() {
			st.torn = fi.Size() - fileEnd
			if err := f.Truncate(fileEnd); err != nil {
				return tailState{}, fmt.Errorf("cannot truncate torn tail of segment %s: %w", f.Name(), err)
			}
		}
	}
	if err := sync(f); err != nil {
		return tailState{}, fmt.Errorf("cannot sync segment %s: %w", f.Name(), err)
	}
	return st, nil
}
