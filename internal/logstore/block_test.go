package logstore

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func TestBlockRoundTrip(t *testing.T) {
	f := func(name string, codec byte, n int, ts func(i int) int64) {
		t.Run(name, func(t *testing.T) {
			rows := make([]row, n)
			idx := make([]int32, n)
			for i := range rows {
				r := &rows[i]
				r.ts = ts(i)
				r.obs = r.ts + int64(i%7) - 3
				r.id = model.RecordID{byte(i), byte(i >> 8), 7}
				if i%3 > 0 {
					r.msg = fmt.Sprintf("line %d of the block %s", i, name)
				}
				if i%5 == 0 {
					r.trace, r.span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
				}
				if i%4 == 0 {
					r.attrs = string(appendAttrs(nil, []model.Attr{{Key: "k", Value: fmt.Sprint(i)}, {Key: "", Value: ""}}))
				}
				r.trunc = i%11 == 0
				idx[i] = int32(i)
			}
			enc := newBlockEncoder(codec)
			buf, m := enc.encode([]byte("prefix"), 42, rows, idx)
			if m.off != 6 || m.rows != uint32(n) || m.minTs != rows[0].ts || m.maxTs != rows[n-1].ts {
				t.Fatalf("meta %+v", m)
			}
			cols := buf[m.off+int64(m.bloomLen) : m.end()]
			if crc(cols) != m.colsCRC || crc(buf[m.off:m.off+int64(m.bloomLen)]) != m.bloomCRC {
				t.Fatal("checksums do not match")
			}
			b, err := parseBlockCols(cols)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.appendRows(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, rows) {
				for i := range rows {
					if !reflect.DeepEqual(got[i], rows[i]) {
						t.Fatalf("row %d: got %+v, want %+v", i, got[i], rows[i])
					}
				}
				t.Fatal("rows differ")
			}
			// Lazily, one row at a time, as a query reads it.
			b, _ = parseBlockCols(cols)
			var r storage.Row
			if err := b.fillRow(&r, n-1); err != nil {
				t.Fatal(err)
			}
			if r.Message != rows[n-1].msg || r.Timestamp != rows[n-1].ts || r.ID != rows[n-1].id {
				t.Fatalf("last row: %+v", r)
			}
			if b.done[fcolMsg][0] && n > frameRows {
				t.Fatal("reading the last row decoded the first frame")
			}
		})
	}
	f("one row", codecZstd, 1, func(int) int64 { return 5 })
	f("ns, several frames", codecZstd, 3*frameRows+17, func(i int) int64 { return day0 + int64(i)*1234567 })
	f("ms", codecS2, 2000, func(i int) int64 { return day0 + int64(i/3)*1e6 })
	f("negative", codecS2, 100, func(i int) int64 { return -1e12 + int64(i)*1e9 })
	f("full", codecZstd, maxBlockRows, func(i int) int64 { return day0 + int64(i) })
}

func TestBlockCorrupt(t *testing.T) {
	rows := []row{{ts: 1, msg: "hello"}, {ts: 2, msg: "world"}}
	_, m := newBlockEncoder(codecZstd).encode(nil, 1, rows, []int32{0, 1})
	buf, _ := newBlockEncoder(codecZstd).encode(nil, 1, rows, []int32{0, 1})
	cols := buf[m.bloomLen:]
	for i := range cols {
		for _, b := range []byte{0, 0xff, cols[i] + 1} {
			c := append([]byte(nil), cols...)
			c[i] = b
			if bc, err := parseBlockCols(c); err == nil {
				bc.appendRows(nil) // must not panic
			}
		}
		if bc, err := parseBlockCols(cols[:i]); err == nil {
			bc.appendRows(nil) // must not panic
		}
	}
}
