package lokipush

import (
	"errors"
	"fmt"
	"strings"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/model"
)

// Field numbers of Loki's logproto push messages (pkg/push/push.proto).
const (
	fieldRequestStreams = 1 // PushRequest.streams: StreamAdapter

	fieldStreamLabels  = 1 // StreamAdapter.labels: string
	fieldStreamEntries = 2 // StreamAdapter.entries: EntryAdapter

	fieldEntryTimestamp = 1 // EntryAdapter.timestamp: google.protobuf.Timestamp
	fieldEntryLine      = 2 // EntryAdapter.line: string
	fieldEntryMetadata  = 3 // EntryAdapter.structuredMetadata: LabelPairAdapter

	fieldTimestampSeconds = 1
	fieldTimestampNanos   = 2

	fieldPairName  = 1
	fieldPairValue = 2
)

// unsnappy decodes a snappy block, refusing to allocate more than limit
// bytes.
func unsnappy(body []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", unprefixed(err))
	}
	if limit > 0 && n > limit {
		return nil, &TooLargeError{Size: n, Limit: limit}
	}
	out, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", unprefixed(err))
	}
	return out, nil
}

// unprefixed drops the package prefix of the snappy decoder's errors
// ("s2: corrupt input"), so unsnappy says "snappy: corrupt input" as Loki
// does.
func unprefixed(err error) error {
	s := err.Error()
	for _, p := range []string{"snappy: ", "s2: "} {
		if strings.HasPrefix(s, p) {
			return errors.New(s[len(p):])
		}
	}
	return err
}

// wireError is protowire's error for code n, without its "proto: "
// prefix (the decoder's messages carry one already); protobuf-go writes
// that prefix with a space or a no-break space.
func wireError(n int) string {
	s := protowire.ParseError(n).Error()
	if rest, ok := strings.CutPrefix(s, "proto:"); ok {
		return strings.TrimLeft(rest, " \u00a0")
	}
	return s
}

// decodeProto decodes a PushRequest. Strings are substrings of text, one
// copy of data, so a request costs one allocation for all its lines.
func (d *Decoder) decodeProto(data []byte) error {
	text := string(data)
	req := fields{b: data}
	for {
		f, ok, err := req.next()
		if !ok {
			return err
		}
		if f.num != fieldRequestStreams {
			continue
		}
		if f.typ != protowire.BytesType {
			return path{stream: -1, entry: -1, md: -1}.wrongType("Streams", f.typ)
		}
		p := path{stream: len(d.req.streams), entry: -1, md: -1}
		s := d.req.addStream()
		if err := decodeStream(s, f, p, text); err != nil {
			return err
		}
	}
}

func decodeStream(s *stream, sf field, p path, text string) error {
	it := sf.fields()
	for {
		f, ok, err := it.next()
		if !ok {
			return p.wrap(err)
		}
		switch f.num {
		case fieldStreamLabels:
			if f.typ != protowire.BytesType {
				return p.wrongType("Labels", f.typ)
			}
			s.labels = f.str(text)
			s.hasLabels = true
		case fieldStreamEntries:
			p.entry = len(s.entries)
			if f.typ != protowire.BytesType {
				return p.wrongType("Entries", f.typ)
			}
			if err := decodeEntry(s.addEntry(), f, p, text); err != nil {
				return err
			}
		}
	}
}

func decodeEntry(e *entry, ef field, p path, text string) error {
	it := ef.fields()
	for {
		f, ok, err := it.next()
		if !ok {
			return p.wrap(err)
		}
		switch f.num {
		case fieldEntryTimestamp:
			if f.typ != protowire.BytesType {
				return p.wrongType("Timestamp", f.typ)
			}
			p.ts = true
			var sec, nsec int64
			ts := f.fields()
			for {
				f, ok, err := ts.next()
				if !ok {
					if err != nil {
						return p.wrap(err)
					}
					break
				}
				if f.num != fieldTimestampSeconds && f.num != fieldTimestampNanos {
					continue
				}
				name := "Seconds"
				if f.num == fieldTimestampNanos {
					name = "Nanos"
				}
				if f.typ != protowire.VarintType {
					return p.wrongType(name, f.typ)
				}
				if f.num == fieldTimestampSeconds {
					sec = int64(f.u)
				} else {
					nsec = int64(int32(f.u))
				}
			}
			p.ts = false
			e.ts = sec*1e9 + nsec
		case fieldEntryLine:
			if f.typ != protowire.BytesType {
				return p.wrongType("Line", f.typ)
			}
			e.line = f.str(text)
		case fieldEntryMetadata:
			if f.typ != protowire.BytesType {
				return p.wrongType("StructuredMetadata", f.typ)
			}
			p.md = len(e.metadata)
			var a model.Attr
			md := f.fields()
			for {
				f, ok, err := md.next()
				if !ok {
					if err != nil {
						return p.wrap(err)
					}
					break
				}
				if f.num != fieldPairName && f.num != fieldPairValue {
					continue
				}
				if f.typ != protowire.BytesType {
					name := "Name"
					if f.num == fieldPairValue {
						name = "Value"
					}
					return p.wrongType(name, f.typ)
				}
				if f.num == fieldPairName {
					a.Key = f.str(text)
				} else {
					a.Value = f.str(text)
				}
			}
			p.md = -1
			e.metadata = append(e.metadata, a)
		}
	}
}

// path locates a message inside a PushRequest, for errors; -1 means the
// level is not reached.
type path struct {
	stream, entry, md int
	ts                bool
}

func (p path) String() string {
	var b strings.Builder
	b.WriteString("PushRequest")
	if p.stream >= 0 {
		fmt.Fprintf(&b, ".Streams[%d]", p.stream)
	}
	if p.entry >= 0 {
		fmt.Fprintf(&b, ".Entries[%d]", p.entry)
	}
	if p.md >= 0 {
		fmt.Fprintf(&b, ".StructuredMetadata[%d]", p.md)
	}
	if p.ts {
		b.WriteString(".Timestamp")
	}
	return b.String()
}

func (p path) wrongType(field string, typ protowire.Type) error {
	return fmt.Errorf("proto: %s: wrong wireType = %d for field %s", p, typ, field)
}

// wrap places a *wireErr found inside the message at p.
func (p path) wrap(err error) error {
	if err == nil {
		return nil
	}
	var we *wireErr
	if errors.As(err, &we) && we.at == "" {
		we.at = p.String()
	}
	return err
}

// wireErr is a malformed field; at is filled in by the message's decoder.
type wireErr struct {
	at  string
	num protowire.Number
	n   int
}

func (e *wireErr) Error() string {
	at := e.at
	if at == "" {
		at = "PushRequest"
	}
	if e.num == 0 {
		return fmt.Sprintf("proto: %s: %s", at, wireError(e.n))
	}
	return fmt.Sprintf("proto: %s: field %d: %s", at, e.num, wireError(e.n))
}

// field is one field of a protobuf message: its bytes (v, at offset off of
// the whole request) when length-delimited, its value (u) when a varint.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   []byte
	off int
	u   uint64
}

// str returns the field's bytes as a substring of text, the request.
func (f field) str(text string) string { return text[f.off : f.off+len(f.v)] }

// fields iterates over the fields of the embedded message f.
func (f field) fields() fields { return fields{b: f.v, base: f.off} }

// fields iterates over the fields of a message b, which starts at offset
// base of the request. Fixed-size fields and groups are skipped.
type fields struct {
	b         []byte
	base, pos int
}

// next returns the next varint or length-delimited field; ok is false at
// the end of the message or on an error.
func (it *fields) next() (f field, ok bool, err error) {
	b := it.b
	for it.pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[it.pos:])
		if n < 0 {
			return f, false, &wireErr{n: n}
		}
		it.pos += n
		f = field{num: num, typ: typ}
		switch typ {
		case protowire.BytesType:
			var m uint64
			m, n = protowire.ConsumeVarint(b[it.pos:])
			if n >= 0 && m > uint64(len(b)-it.pos-n) {
				n = -1 // truncated
			}
			if n >= 0 {
				f.off = it.base + it.pos + n
				f.v = b[it.pos+n : it.pos+n+int(m)]
				n += int(m)
			}
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b[it.pos:])
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[it.pos:])
		}
		if n < 0 {
			return f, false, &wireErr{num: num, n: n}
		}
		it.pos += n
		if typ == protowire.BytesType || typ == protowire.VarintType {
			return f, true, nil
		}
	}
	return f, false, nil
}
