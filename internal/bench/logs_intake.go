package bench

import (
	"fmt"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// intake is how the HTTP phase of `vigil bench logs` sends lines.
type intake struct {
	name        string
	path        string
	contentType string
	ok          int // the status of an accepted request
	// encode appends the body carrying lines [from, to); line i has
	// timestamp base+i.
	encode func(dst []byte, from, to int, base int64) []byte
}

var intakes = map[string]intake{
	"ndjson": {name: "ndjson", path: "/api/v1/logs", contentType: "application/x-ndjson", ok: 200,
		encode: func(dst []byte, from, to int, base int64) []byte {
			for i := from; i < to; i++ {
				dst = benchLine(dst, i, base+int64(i))
			}
			return dst
		}},
	"loki-push": {name: "loki-push", path: "/loki/api/v1/push", contentType: "application/x-protobuf", ok: 204,
		encode: lokiPushBody},
}

// lokiPushBody encodes the same lines as benchLine as Promtail would push
// them: a snappy-compressed logproto.PushRequest, one stream per service,
// level and host.
func lokiPushBody(dst []byte, from, to int, base int64) []byte {
	streams := map[string][]int{}
	var order []string
	for i := from; i < to; i++ {
		labels := fmt.Sprintf(`{service_name="bench-%d", level="%s", host="h%d"}`, i%20, benchLevel(i), i%8)
		if _, ok := streams[labels]; !ok {
			order = append(order, labels)
		}
		streams[labels] = append(streams[labels], i)
	}
	var req, stream, entry, ts, msg []byte
	for _, labels := range order {
		stream = protowire.AppendTag(stream[:0], 1, protowire.BytesType)
		stream = protowire.AppendString(stream, labels)
		for _, i := range streams[labels] {
			t := base + int64(i)
			ts = protowire.AppendTag(ts[:0], 1, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(t/1e9))
			ts = protowire.AppendTag(ts, 2, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(t%1e9))
			entry = protowire.AppendTag(entry[:0], 1, protowire.BytesType)
			entry = protowire.AppendBytes(entry, ts)
			msg = benchMessage(msg[:0], i)
			entry = protowire.AppendTag(entry, 2, protowire.BytesType)
			entry = protowire.AppendBytes(entry, msg)
			stream = protowire.AppendTag(stream, 2, protowire.BytesType)
			stream = protowire.AppendBytes(stream, entry)
		}
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, stream)
	}
	return append(dst, snappy.Encode(nil, req)...)
}
