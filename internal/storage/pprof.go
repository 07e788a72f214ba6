package storage

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/google/pprof/profile"
)

// DecodePprof parses a profile's pprof bytes as received: gzipped or plain
// protobuf (not pprof's legacy text formats), at most max bytes once
// decompressed, and checks that it is consistent. Every profile store
// decodes what it is given with it, so that the stores accept and refuse
// the same profiles.
func DecodePprof(b []byte, max int64) (*profile.Profile, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("pprof: bad gzip header: %w", err)
		}
		var buf bytes.Buffer
		n, err := io.Copy(&buf, io.LimitReader(zr, max+1))
		if err != nil {
			return nil, fmt.Errorf("pprof: cannot decompress: %w", err)
		}
		if n > max {
			return nil, fmt.Errorf("pprof: more than %d bytes once decompressed (the profile store's limit)", max)
		}
		b = buf.Bytes()
	} else if int64(len(b)) > max {
		return nil, fmt.Errorf("pprof: %d bytes, more than the profile store's limit of %d", len(b), max)
	}
	p, err := profile.ParseUncompressed(b)
	if err != nil {
		return nil, fmt.Errorf("pprof: %w", err)
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("pprof: %w", err)
	}
	return p, nil
}
