package diskqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/auth"
)

// appendRecordV1 appends the encoding of key and value in a version-1
// segment, as releases before tenants wrote it; the producer no longer
// writes it.
func appendRecordV1(dst []byte, key string, value []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(keyLenSize+len(key)+len(value)))
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = append(dst, value...)
	crc := crc32.Update(crc32.Update(0, castagnoli, dst[start:start+4]), castagnoli, dst[start+recordHeaderSize:])
	binary.BigEndian.PutUint32(dst[start+4:], crc)
	return dst
}

func TestRecordRoundTrip(t *testing.T) {
	f := func(tenant, key string, value []byte) {
		t.Helper()
		rec := appendRecord([]byte("prefix"), tenant, key, value)[len("prefix"):]
		if got, want := int64(len(rec)), recordSize(len(tenant), len(key), len(value)); got != want {
			t.Fatalf("record size is %d; want %d", got, want)
		}
		gotTenant, gotKey, gotValue, err := decodePayload(version2, rec[:recordHeaderSize], rec[recordHeaderSize:])
		if err != nil {
			t.Fatalf("decodePayload: %v", err)
		}
		if gotTenant != tenant || gotKey != key || !bytes.Equal(gotValue, value) {
			t.Fatalf("got tenant %q, key %q, value %q; want %q, %q, %q", gotTenant, gotKey, gotValue, tenant, key, value)
		}
	}
	f("default", "", nil)
	f("team-a", "svc", []byte("batch"))
	f(strings.Repeat("t", maxTenantLen), strings.Repeat("k", maxKeyLen), []byte{0, 1, 2})
	f("a", "k", bytes.Repeat([]byte{0xff}, 1<<16))
}

// TestRecordV1: records of version-1 segments decode as the default
// tenant's, their layout unchanged.
func TestRecordV1(t *testing.T) {
	rec := appendRecordV1(nil, "svc", []byte("batch"))
	if got, want := len(rec), recordHeaderSize+keyLenSize+3+5; got != want {
		t.Fatalf("version-1 record of 8 key and value bytes has %d bytes; want %d", got, want)
	}
	tenant, key, value, err := decodePayload(version1, rec[:recordHeaderSize], rec[recordHeaderSize:])
	if err != nil {
		t.Fatalf("decodePayload: %v", err)
	}
	if tenant != auth.DefaultTenant || key != "svc" || string(value) != "batch" {
		t.Fatalf("got tenant %q, key %q, value %q; want %q, \"svc\", \"batch\"", tenant, key, value, auth.DefaultTenant)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := appendRecord(nil, "team-a", "svc", []byte("batch"))
	f := func(name string, version byte, damage func([]byte) []byte) {
		t.Helper()
		rec := damage(bytes.Clone(good))
		_, _, _, err := decodePayload(version, rec[:recordHeaderSize], rec[recordHeaderSize:])
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: got error %v; want ErrCorrupt", name, err)
		}
	}
	same := func(b []byte) []byte { return b }
	f("flipped value bit", version2, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	f("flipped length bit", version2, func(b []byte) []byte { b[3] ^= 1; return b })
	f("flipped crc bit", version2, func(b []byte) []byte { b[4] ^= 1; return b })
	f("short payload", version2, func(b []byte) []byte { return b[:len(b)-1] })
	f("unknown version", 3, same)
	// A checksum that matches does not make a bad tenant good.
	bad := appendRecord(nil, "../etc", "svc", []byte("batch"))
	f("invalid tenant", version2, func([]byte) []byte { return bad })
	long := appendRecord(nil, "t", "", nil)
	long[recordHeaderSize] = 200 // tenant length past the payload
	crc := crc32.Update(crc32.Update(0, castagnoli, long[:4]), castagnoli, long[recordHeaderSize:])
	binary.BigEndian.PutUint32(long[4:], crc)
	f("tenant past the payload", version2, func([]byte) []byte { return long })
}

func TestScanRecords(t *testing.T) {
	a := appendRecord(nil, "default", "a", []byte("first"))
	ab := appendRecord(bytes.Clone(a), "team-b", "b", []byte("second"))
	a1 := appendRecordV1(nil, "a", []byte("first"))
	ab1 := appendRecordV1(bytes.Clone(a1), "b", []byte("second"))
	f := func(name string, version byte, data []byte, wantEnd int64, wantN int) {
		t.Helper()
		end, n, err := scanRecords(version, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: scanRecords: %v", name, err)
		}
		if end != wantEnd || n != wantN {
			t.Fatalf("%s: got end %d, %d records; want %d, %d", name, end, n, wantEnd, wantN)
		}
	}
	f("empty", version2, nil, 0, 0)
	f("two records", version2, ab, int64(len(ab)), 2)
	f("cut in second header", version2, ab[:len(a)+3], int64(len(a)), 1)
	f("cut in second payload", version2, ab[:len(ab)-1], int64(len(a)), 1)
	f("zeros after", version2, append(bytes.Clone(ab), make([]byte, 100)...), int64(len(ab)), 2)
	f("garbage after", version2, append(bytes.Clone(ab), "garbage!garbage!"...), int64(len(ab)), 2)
	huge := bytes.Clone(a)
	huge[0] = 0x7f // length far beyond the data
	f("length beyond data", version2, huge, 0, 0)
	f("version 1: two records", version1, ab1, int64(len(ab1)), 2)
	f("version 1: cut in second payload", version1, ab1[:len(ab1)-1], int64(len(a1)), 1)
}

// FuzzScanRecords checks that recovery never panics on any segment content
// of either version and keeps only a prefix made of records that decode.
func FuzzScanRecords(f *testing.F) {
	ab := appendRecord(appendRecord(nil, "default", "a", []byte("first")), "team-b", "b", []byte("second"))
	ab1 := appendRecordV1(appendRecordV1(nil, "a", []byte("first")), "b", []byte("second"))
	for _, v := range []byte{version1, version2} {
		f.Add(v, ab)
		f.Add(v, ab[:len(ab)-3])
		f.Add(v, ab1)
		f.Add(v, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	}
	f.Fuzz(func(t *testing.T, version byte, data []byte) {
		end, n, err := scanRecords(version, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("scanRecords: %v", err)
		}
		if end < 0 || end > int64(len(data)) {
			t.Fatalf("got end %d; want within [0, %d]", end, len(data))
		}
		for off, i := int64(0), 0; i < n; i++ {
			length, _ := parseHeader(data[off:])
			size := recordHeaderSize + int64(length)
			tenant, _, _, err := decodePayload(version, data[off:off+recordHeaderSize], data[off+recordHeaderSize:off+size])
			if err != nil {
				t.Fatalf("record %d at %d: %v", i, off, err)
			}
			if !auth.ValidTenant(tenant) {
				t.Fatalf("record %d at %d: tenant %q is not a tenant id", i, off, tenant)
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
