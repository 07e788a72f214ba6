package lokipush

import (
	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// Test builders of Loki's push protobuf, written from push.proto with
// protowire so the decoder is checked against the wire format, not
// against itself.

type pbEntry struct {
	ts       int64
	line     string
	metadata [][2]string
}

type pbStream struct {
	labels  string
	entries []pbEntry
}

func pbRequest(streams ...pbStream) []byte {
	var b []byte
	for _, s := range streams {
		var sb []byte
		sb = protowire.AppendTag(sb, 1, protowire.BytesType)
		sb = protowire.AppendString(sb, s.labels)
		for _, e := range s.entries {
			var eb, tb []byte
			tb = protowire.AppendTag(tb, 1, protowire.VarintType)
			tb = protowire.AppendVarint(tb, uint64(e.ts/1e9))
			tb = protowire.AppendTag(tb, 2, protowire.VarintType)
			tb = protowire.AppendVarint(tb, uint64(e.ts%1e9))
			eb = protowire.AppendTag(eb, 1, protowire.BytesType)
			eb = protowire.AppendBytes(eb, tb)
			eb = protowire.AppendTag(eb, 2, protowire.BytesType)
			eb = protowire.AppendString(eb, e.line)
			for _, m := range e.metadata {
				var mb []byte
				mb = protowire.AppendTag(mb, 1, protowire.BytesType)
				mb = protowire.AppendString(mb, m[0])
				mb = protowire.AppendTag(mb, 2, protowire.BytesType)
				mb = protowire.AppendString(mb, m[1])
				eb = protowire.AppendTag(eb, 3, protowire.BytesType)
				eb = protowire.AppendBytes(eb, mb)
			}
			sb = protowire.AppendTag(sb, 2, protowire.BytesType)
			sb = protowire.AppendBytes(sb, eb)
		}
		sb = protowire.AppendTag(sb, 3, protowire.VarintType) // hash, ignored
		sb = protowire.AppendVarint(sb, 12345)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, sb)
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType) // format, ignored
	b = protowire.AppendString(b, "loki")
	return b
}

func snappyRequest(streams ...pbStream) []byte { return snappy.Encode(nil, pbRequest(streams...)) }
