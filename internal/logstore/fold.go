package logstore

import (
	"encoding/binary"
	"slices"
	"strings"
)

// lowerTable maps A–Z to a–z and every other byte to itself. The store folds
// case in ASCII only: that is what the trigram blooms index and what
// SelectParams.ContainsFold promises.
var lowerTable = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c + 'a' - 'A')
	}
	return t
}()

// appendLowerASCII appends s with A–Z replaced by a–z, eight bytes at a time.
func appendLowerASCII(dst []byte, s string) []byte {
	n := len(dst)
	dst = append(dst, s...)
	b := dst[n:]
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		h := w &^ high // heptets: no carry can cross a byte below
		ge := h + (0x80-'A')*ones
		gt := h + (0x80-'Z'-1)*ones
		upper := (ge &^ gt) &^ w & high // 'A' <= c <= 'Z' and c < 0x80
		binary.LittleEndian.PutUint64(b[i:], w|upper>>2)
	}
	for ; i < len(b); i++ {
		b[i] = lowerTable[b[i]]
	}
	return dst
}

// lowerASCII returns s with A–Z replaced by a–z.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return string(appendLowerASCII(nil, s))
		}
	}
	return s
}

// lineFilter is the exact row check of SelectParams.Contains and
// ContainsFold. It is not safe for concurrent use (it owns a scratch buffer).
type lineFilter struct {
	contains []string
	fold     []string   // already lower-cased
	any      [][]string // SelectParams.ContainsAny, without groups every line passes
	scratch  []byte
}

func newLineFilter(contains, fold []string, any [][]string) *lineFilter {
	f := &lineFilter{}
	for _, g := range any {
		if !slices.Contains(g, "") {
			f.any = append(f.any, g)
		}
	}
	for _, c := range contains {
		if c != "" {
			f.contains = append(f.contains, c)
		}
	}
	for _, c := range fold {
		if c != "" {
			f.fold = append(f.fold, lowerASCII(c))
		}
	}
	return f
}

func (f *lineFilter) empty() bool { return len(f.contains) == 0 && len(f.fold) == 0 && len(f.any) == 0 }

func (f *lineFilter) match(line string) bool {
	for _, c := range f.contains {
		if !strings.Contains(line, c) {
			return false
		}
	}
	for _, g := range f.any {
		if !slices.ContainsFunc(g, func(c string) bool { return strings.Contains(line, c) }) {
			return false
		}
	}
	if len(f.fold) == 0 {
		return true
	}
	f.scratch = appendLowerASCII(f.scratch[:0], line)
	low := unsafeString(f.scratch)
	for _, c := range f.fold {
		if !strings.Contains(low, c) {
			return false
		}
	}
	return true
}
