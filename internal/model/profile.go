package model

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/zeebo/xxh3"
)

// Profile types: the pprof endpoints of net/http/pprof a scrape fetches.
// A pushed profile may carry another type name (Pyroscope's "wall",
// "itimer", …); any name that ValidProfileType accepts is kept.
const (
	ProfileCPU       = "cpu"
	ProfileHeap      = "heap"
	ProfileAllocs    = "allocs"
	ProfileGoroutine = "goroutine"
	ProfileMutex     = "mutex"
	ProfileBlock     = "block"
)

// Profile labels beside LabelService, LabelGrade ("1" critical … "4" low,
// absent when unknown) and LabelEnv. A profile's labels are free-form, but
// these five are the ones a scrape or a push sets when it knows them.
const (
	LabelInstance = "instance" // host:port scraped, or the pushing host
	LabelJob      = "job"
)

// Limits of a profile's metadata, enforced by Validate.
const (
	MaxProfileTypeLen  = 64
	MaxProfileLabels   = 64
	MaxProfileLabelLen = 1024 // of a label name or value
)

// Profile is one pprof profile inside Vigil: what a scrape or a push
// produces, what the queue carries (docs/format/profiles.md) and what a
// profile store is given. The pprof bytes travel as they were received;
// stores decode them.
type Profile struct {
	// ID is the profile's identity, ProfileID of the fields below: a
	// redelivered profile has the same id and is stored once.
	ID RecordID
	// Type is the profile type: cpu, heap, allocs, goroutine, mutex, block
	// or a pushed type name. It is the name of a selector: cpu{job="x"}.
	Type string
	// Labels identify the series: service, grade, env, instance, job and
	// any other target label; sorted by name, each name once, no empty
	// value.
	Labels Labels
	// TimeNanos is when the profile's window started, DurationNanos how
	// long it lasted (0 for an instant profile such as heap); Unix ns.
	TimeNanos     int64
	DurationNanos int64
	// Pprof is the profile as received: a gzipped (or plain) pprof
	// protobuf. Consumers must not modify it.
	Pprof []byte
}

// ProfileID returns the id of a profile: the 128-bit xxh3 hash of its type,
// labels, time, duration and pprof bytes. Two deliveries of one profile get
// the same id; two profiles differing in any of these do not.
func ProfileID(typ string, ls Labels, timeNanos, durationNanos int64, pprof []byte) RecordID {
	h := xxh3.New()
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(typ)))
	b = append(b, typ...)
	b = binary.AppendUvarint(b, uint64(len(ls)))
	for _, l := range ls {
		b = binary.AppendUvarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(timeNanos))     // #nosec G115 -- the time's bits, hashed
	b = binary.LittleEndian.AppendUint64(b, uint64(durationNanos)) // #nosec G115 -- the duration's bits, hashed
	_, _ = h.Write(b)                                              // a hash's Write never fails
	_, _ = h.Write(pprof)
	sum := h.Sum128().Bytes()
	return RecordID(sum)
}

// NewProfile builds a profile with its labels sorted, empty values dropped,
// and its id computed.
func NewProfile(typ string, labels map[string]string, timeNanos, durationNanos int64, pprof []byte) Profile {
	ls := make(Labels, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			ls = append(ls, Label{Name: k, Value: v})
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return Profile{
		ID:            ProfileID(typ, ls, timeNanos, durationNanos, pprof),
		Type:          typ,
		Labels:        ls,
		TimeNanos:     timeNanos,
		DurationNanos: durationNanos,
		Pprof:         pprof,
	}
}

// ValidProfileType reports whether name can be a profile type: 1 to
// MaxProfileTypeLen characters of [a-zA-Z0-9_], not starting with a digit,
// so that it can be the name of a selector.
func ValidProfileType(name string) bool {
	if name == "" || len(name) > MaxProfileTypeLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Validate checks the metadata of a profile (not its pprof bytes, which a
// store decodes) and names the field at fault.
func (p *Profile) Validate() error {
	if !ValidProfileType(p.Type) {
		return fmt.Errorf("profile type %q: want 1 to %d characters of [a-zA-Z0-9_], not starting with a digit", p.Type, MaxProfileTypeLen)
	}
	if len(p.Labels) > MaxProfileLabels {
		return fmt.Errorf("profile has %d labels, more than the limit of %d", len(p.Labels), MaxProfileLabels)
	}
	for i, l := range p.Labels {
		if l.Name == "" || len(l.Name) > MaxProfileLabelLen || len(l.Value) > MaxProfileLabelLen {
			return fmt.Errorf("profile label %q: name must be 1 to %d bytes and value at most %d", l.Name, MaxProfileLabelLen, MaxProfileLabelLen)
		}
		if l.Value == "" {
			return fmt.Errorf("profile label %q has an empty value", l.Name)
		}
		if i > 0 && p.Labels[i-1].Name >= l.Name {
			return fmt.Errorf("profile labels are not sorted by name or %q appears twice", l.Name)
		}
	}
	if p.TimeNanos <= 0 {
		return fmt.Errorf("profile time %d: want a positive Unix time in nanoseconds", p.TimeNanos)
	}
	if p.DurationNanos < 0 {
		return fmt.Errorf("profile duration %d is negative", p.DurationNanos)
	}
	if len(p.Pprof) == 0 {
		return fmt.Errorf("profile has no pprof bytes")
	}
	return nil
}
