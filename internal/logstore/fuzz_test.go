package logstore

import (
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// FuzzDecodeRecords feeds arbitrary payloads to the decoders of the WAL,
// index and streams records and of encoded attributes: they must report
// corrupt data, never panic or allocate without bound. The seeds are real
// encodings, which must decode to what was encoded.
func FuzzDecodeRecords(f *testing.F) {
	recs := []model.LogRecord{
		{ID: model.RecordID{1, 2, 3}, Timestamp: 1700000000000000000, ObservedTimestamp: 1700000000000000500,
			Service: "api", Level: "error", Env: "prod", Host: "host-1", Source: "file", Grade: 2,
			Message: "GET /api/v1/orders failed", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
			Attributes: []model.Attr{{Key: "log.file.path", Value: "/var/log/api.log"}, {Key: "k", Value: ""}}, Truncated: true},
		{ID: model.RecordID{4}, Timestamp: -5, ObservedTimestamp: -5, Message: "plain"},
	}
	batch := encodeBatch(nil, recs, []int32{0, 1}, make([]row, 2))
	got, err := decodeBatch(batch)
	if err != nil || !reflect.DeepEqual(got, recs) {
		f.Fatalf("decodeBatch of an encoded batch: got %+v, %v; want %+v", got, err, recs)
	}
	f.Add(batch)

	blocks := []*blockMeta{
		{sid: 42, minTs: 100, maxTs: 250, off: 4096, rows: 1000, bloomLen: 64, colsLen: 9000, bloomCRC: 7, colsCRC: 8, seq: 3, flags: flagMerged},
		{sid: 43, minTs: -1, maxTs: 0, off: 0, rows: 1},
	}
	rec := appendIndexRecord(nil, idxReplace, 9, blocks[1:], blocks)
	ir, err := decodeIndexRecord(rec[recordHeader:])
	if err != nil || ir.kind != idxReplace || ir.seq != 9 || !reflect.DeepEqual(ir.removed, []int64{0}) || !reflect.DeepEqual(ir.blocks, blocks) {
		f.Fatalf("decodeIndexRecord of an encoded record: got %+v, %v", ir, err)
	}
	f.Add(rec[recordHeader:])
	f.Add(appendStreamRecord(nil, 42, model.Labels{{Name: "service", Value: "api"}})[recordHeader:])
	f.Add(appendAttrs(nil, recs[0].Attributes))

	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeBatch(b)
		_, _ = decodeIndexRecord(b)
		_, _ = decodeAttrs(nil, string(b))
	})
}
