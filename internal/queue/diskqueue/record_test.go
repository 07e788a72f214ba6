package diskqueue

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	f := func(key string, value []byte) {
		t.Helper()
		rec := appendRecord([]byte("prefix"), key, value)[len("prefix"):]
		if got, want := int64(len(rec)), recordSize(len(key), len(value)); got != want {
			t.Fatalf("record size is %d; want %d", got, want)
		}
		gotKey, gotValue, err := decodePayload(rec[:recordHeaderSize], rec[recordHeaderSize:])
		if err != nil {
			t.Fatalf("decodePayload: %v", err)
		}
		if gotKey != key || !bytes.Equal(gotValue, value) {
			t.Fatalf("got key %q, value %q; want %q, %q", gotKey, gotValue, key, value)
		}
	}
	f("", nil)
	f("svc", []byte("batch"))
	f(strings.Repeat("k", maxKeyLen), []byte{0, 1, 2})
	f("k", bytes.Repeat([]byte{0xff}, 1<<16))
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := appendRecord(nil, "svc", []byte("batch"))
	f := func(name string, damage func([]byte) []byte) {
		t.Helper()
		rec := damage(bytes.Clone(good))
		_, _, err := decodePayload(rec[:recordHeaderSize], rec[recordHeaderSize:])
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: got error %v; want ErrCorrupt", name, err)
		}
	}
	f("flipped value bit", func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	f("flipped length bit", func(b []byte) []byte { b[3] ^= 1; return b })
	f("flipped crc bit", func(b []byte) []byte { b[4] ^= 1; return b })
	f("short payload", func(b []byte) []byte { return b[:len(b)-1] })
}

func TestScanRecords(t *testing.T) {
	a := appendRecord(nil, "a", []byte("first"))
	ab := appendRecord(bytes.Clone(a), "b", []byte("second"))
	f := func(name string, data []byte, wantEnd int64, wantN int) {
		t.Helper()
		end, n, err := scanRecords(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: scanRecords: %v", name, err)
		}
		if end != wantEnd || n != wantN {
			t.Fatalf("%s: got end %d, %d records; want %d, %d", name, end, n, wantEnd, wantN)
		}
	}
	f("empty", nil, 0, 0)
	f("two records", ab, int64(len(ab)), 2)
	f("cut in second header", ab[:len(a)+3], int64(len(a)), 1)
	f("cut in second payload", ab[:len(ab)-1], int64(len(a)), 1)
	f("zeros after", append(bytes.Clone(ab), make([]byte, 100)...), int64(len(ab)), 2)
	f("garbage after", append(bytes.Clone(ab), "garbage!garbage!"...), int64(len(ab)), 2)
	huge := bytes.Clone(a)
	huge[0] = 0x7f // length far beyond the data
	f("length beyond data", huge, 0, 0)
}

// FuzzScanRecords checks that recovery never panics on any segment content
// and keeps only a prefix made of records that decode.
func FuzzScanRecords(f *testing.F) {
	ab := appendRecord(appendRecord(nil, "a", []byte("first")), "b", []byte("second"))
	f.Add(ab)
	f.Add(ab[:len(ab)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		end, n, err := scanRecords(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("scanRecords: %v", err)
		}
		if end < 0 || end > int64(len(data)) {
			t.Fatalf("got end %d; want within [0, %d]", end, len(data))
		}
		for off, i := int64(0), 0; i < n; i++ {
			length, _ := parseHeader(data[off:])
			size := recordHeaderSize + int64(length)
			if _, _, err := decodePayload(data[off:off+recordHeaderSize], data[off+recordHeaderSize:off+size]); err != nil {
				t.Fatalf("record %d at %d: %v", i, off, err)
			}
			off += size
		}
	})
}

func TestSegmentName(t *testing.T) {
	f := func(base int64, want string) {
		t.Helper()
		if got := segmentName(base); got != want {
			t.Fatalf("segmentName(%d) = %q; want %q", base, got, want)
		}
		if got, ok := parseSegmentName(want); !ok || got != base {
			t.Fatalf("parseSegmentName(%q) = %d, %v; want %d, true", want, got, ok, base)
		}
	}
	f(0, "00000000000000000000.seg")
	f(123456, "00000000000000123456.seg")
	f(1<<62, "04611686018427387904.seg")
	for _, bad := range []string{"0.seg", "00000000000000000000.tmp", "0000000000000000000x.seg", "consumer.offset"} {
		if _, ok := parseSegmentName(bad); ok {
			t.Fatalf("parseSegmentName(%q) accepted a name that is not a segment's", bad)
		}
	}
}
