package model

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/binenc"
)

// ProfileRecordVersion is the version byte of a profile queue record
// (docs/format/profiles.md).
const ProfileRecordVersion = 1

// ProfileTopic is the queue topic (Kafka) of profiles; ProfileQueueDir the
// embedded queue's directory under the data directory.
const (
	ProfileTopic    = "vigil.profiles"
	ProfileQueueDir = "queue-profiles"
)

// ProfileRecordKey returns the queue key of p: its service, so that one
// service's profiles reach one consumer in order; the type when it has no
// service label.
func ProfileRecordKey(p *Profile) []byte {
	if s := p.Labels.Get(LabelService); s != "" {
		return []byte(s)
	}
	return []byte(p.Type)
}

// AppendProfileRecord appends the queue value of p to dst:
//
//	u8 version (1) | uvarint header length | header | pprof bytes (to the end)
//	header: 16 bytes id | string type | uvarint label count |
//	        (string name, string value)* | varint time ns | varint duration ns
//
// A string is a uvarint length and its bytes.
func AppendProfileRecord(dst []byte, p *Profile) []byte {
	var h []byte
	h = append(h, p.ID[:]...)
	h = binenc.AppendString(h, p.Type)
	h = binary.AppendUvarint(h, uint64(len(p.Labels)))
	for _, l := range p.Labels {
		h = binenc.AppendString(h, l.Name)
		h = binenc.AppendString(h, l.Value)
	}
	h = binary.AppendVarint(h, p.TimeNanos)
	h = binary.AppendVarint(h, p.DurationNanos)
	dst = append(dst, ProfileRecordVersion)
	dst = binenc.AppendBytes(dst, h)
	return append(dst, p.Pprof...)
}

// ErrProfileRecord is wrapped by DecodeProfileRecord's errors.
var ErrProfileRecord = errors.New("malformed profile record")

// DecodeProfileRecord decodes a queue value written by AppendProfileRecord
// and validates the profile. The returned Pprof aliases b.
func DecodeProfileRecord(b []byte) (Profile, error) {
	var p Profile
	if len(b) == 0 {
		return p, fmt.Errorf("%w: empty", ErrProfileRecord)
	}
	if b[0] != ProfileRecordVersion {
		return p, fmt.Errorf("%w: version %d, want %d", ErrProfileRecord, b[0], ProfileRecordVersion)
	}
	h, rest, ok := binenc.CutLenBytes(b[1:])
	if !ok {
		return p, fmt.Errorf("%w: header cut short", ErrProfileRecord)
	}
	r := binenc.NewReader(h)
	copy(p.ID[:], r.Bytes(16))
	p.Type = r.LenString()
	n := r.Count(2)
	if n > MaxProfileLabels {
		return p, fmt.Errorf("%w: %d labels, more than the limit of %d", ErrProfileRecord, n, MaxProfileLabels)
	}
	if n > 0 {
		p.Labels = make(Labels, n)
		for i := range p.Labels {
			p.Labels[i] = Label{Name: r.LenString(), Value: r.LenString()}
		}
	}
	p.TimeNanos = r.Varint()
	p.DurationNanos = r.Varint()
	if err := r.Err(); err != nil {
		return Profile{}, fmt.Errorf("%w: header: %v", ErrProfileRecord, err)
	}
	if r.More() {
		return Profile{}, fmt.Errorf("%w: %d bytes after the header's fields", ErrProfileRecord, r.Len())
	}
	p.Pprof = rest
	if err := p.Validate(); err != nil {
		return Profile{}, fmt.Errorf("%w: %v", ErrProfileRecord, err)
	}
	return p, nil
}
