package logstore

import (
	"fmt"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// BenchmarkDecodeBatch decodes a WAL batch of 1,000 records with two
// attributes each, as opening a store replays them. One op is one batch.
func BenchmarkDecodeBatch(b *testing.B) {
	recs := make([]model.LogRecord, 1000)
	idx := make([]int32, len(recs))
	for i := range recs {
		recs[i] = model.LogRecord{ID: model.RecordID{byte(i), byte(i >> 8)}, Timestamp: 1700000000000000000 + int64(i)*1e6,
			ObservedTimestamp: 1700000000000000000 + int64(i)*1e6 + 500, Service: fmt.Sprint("svc-", i%20), Level: "info",
			Env: "prod", Host: "host-1", Source: "file", Grade: 2, Message: fmt.Sprintf("GET /api/v1/orders/%d 200 %dms", i, i%300),
			Attributes: []model.Attr{{Key: "log.file.path", Value: "/var/log/api.log"}, {Key: "pod", Value: fmt.Sprint("api-", i%7)}}}
		idx[i] = int32(i)
	}
	batch := encodeBatch(nil, recs, idx, make([]row, len(recs)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAttrs decodes the attributes of a row, as Select does for
// every row it returns. One op is one row's attributes.
func BenchmarkDecodeAttrs(b *testing.B) {
	enc := string(appendAttrs(nil, []model.Attr{{Key: "log.file.path", Value: "/var/log/api.log"},
		{Key: "pod", Value: "api-3"}, {Key: "http.route", Value: "/api/v1/orders/{id}"}}))
	var dst []model.Attr
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = decodeAttrs(dst[:0], enc); err != nil {
			b.Fatal(err)
		}
	}
}
