package binenc

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = binary.LittleEndian.AppendUint32(b, 0xdeadbeef)
	b = binary.LittleEndian.AppendUint64(b, math.MaxUint64-1)
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -300)
	b = AppendString(b, "héllo")
	b = AppendBytes(b, []byte{1, 2, 3})
	b = AppendString(b, "")
	b = binary.AppendUvarint(b, 2) // a count of two 1-byte items
	b = append(b, 'x', 'y')
	b = append(b, "rest"...)

	r := NewReader(b)
	if got := r.Byte(); got != 7 {
		t.Errorf("Byte: got %d; want 7", got)
	}
	if got := r.Uint32(); got != 0xdeadbeef {
		t.Errorf("Uint32: got %#x", got)
	}
	if got := r.Uint64(); got != math.MaxUint64-1 {
		t.Errorf("Uint64: got %d", got)
	}
	if got := r.Uvarint(); got != 300 {
		t.Errorf("Uvarint: got %d; want 300", got)
	}
	if got := r.Varint(); got != -300 {
		t.Errorf("Varint: got %d; want -300", got)
	}
	if got := r.LenString(); got != "héllo" {
		t.Errorf("LenString: got %q", got)
	}
	if got := r.LenBytes(); !bytes.Equal(got, []byte{1, 2, 3}) || cap(got) != 3 {
		t.Errorf("LenBytes: got %v (cap %d); want [1 2 3] (cap 3)", got, cap(got))
	}
	if got := r.LenString(); got != "" {
		t.Errorf("LenString of empty: got %q", got)
	}
	if got := r.Count(1); got != 2 {
		t.Errorf("Count: got %d; want 2", got)
	}
	if got := r.Bytes(2); string(got) != "xy" {
		t.Errorf("Bytes: got %q", got)
	}
	if !r.More() || r.Len() != 4 || r.Err() != nil {
		t.Errorf("before the end: More %v, Len %d, Err %v; want true, 4, nil", r.More(), r.Len(), r.Err())
	}
	if got := r.Bytes(4); string(got) != "rest" {
		t.Errorf("Bytes: got %q", got)
	}
	if r.More() || r.Len() != 0 || r.Err() != nil {
		t.Errorf("at the end: More %v, Len %d, Err %v; want false, 0, nil", r.More(), r.Len(), r.Err())
	}
}

// TestFailure checks that each read fails on input too short or malformed,
// and that the failure sticks.
func TestFailure(t *testing.T) {
	f := func(name string, in []byte, read func(r *Reader)) {
		t.Helper()
		r := NewReader(in)
		read(&r)
		if r.Err() != ErrCorrupt {
			t.Errorf("%s: got Err %v; want ErrCorrupt", name, r.Err())
		}
		if r.More() || r.Len() != 0 {
			t.Errorf("%s: a failed reader has %d bytes left", name, r.Len())
		}
		if r.Byte() != 0 || r.Uvarint() != 0 || r.LenBytes() != nil || r.LenString() != "" || r.Err() == nil {
			t.Errorf("%s: reads after the failure return values", name)
		}
	}
	f("byte of nothing", nil, func(r *Reader) { r.Byte() })
	f("short uint32", []byte{1, 2, 3}, func(r *Reader) { r.Uint32() })
	f("short uint64", []byte{1, 2, 3, 4, 5, 6, 7}, func(r *Reader) { r.Uint64() })
	f("cut uvarint", []byte{0x80}, func(r *Reader) { r.Uvarint() })
	f("overlong uvarint", bytes.Repeat([]byte{0xff}, 11), func(r *Reader) { r.Uvarint() })
	f("cut varint", []byte{0x80, 0x80}, func(r *Reader) { r.Varint() })
	f("negative Bytes", []byte{1}, func(r *Reader) { r.Bytes(-1) })
	f("short Bytes", []byte{1}, func(r *Reader) { r.Bytes(2) })
	f("length past the end", []byte{5, 'a', 'b'}, func(r *Reader) { r.LenBytes() })
	f("string past the end", []byte{5, 'a', 'b'}, func(r *Reader) { r.LenString() })
	f("huge length", binary.AppendUvarint(nil, math.MaxUint64), func(r *Reader) { r.LenBytes() })
	f("count past the end", []byte{3, 0, 0}, func(r *Reader) { r.Count(1) })
	f("count of large items", []byte{2, 0, 0, 0}, func(r *Reader) { r.Count(2) })
	f("Fail", []byte{1, 2}, func(r *Reader) { r.Fail() })
	f("sticks", []byte{3, 1, 2, 3, 4}, func(r *Reader) {
		r.Count(2)
		r.Byte() // would succeed on the bytes after the bad count
	})
}

func TestCutLenBytes(t *testing.T) {
	b := AppendString(AppendBytes(nil, []byte("key")), "value")
	k, rest, ok := CutLenBytes(b)
	if !ok || string(k) != "key" || cap(k) != 3 {
		t.Fatalf("first cut: got %q (cap %d), %v; want \"key\" (cap 3)", k, cap(k), ok)
	}
	v, rest, ok := CutLenBytes(rest)
	if !ok || string(v) != "value" || len(rest) != 0 {
		t.Fatalf("second cut: got %q, rest %q, %v", v, rest, ok)
	}
	for _, in := range [][]byte{nil, {0x80}, {4, 'a', 'b', 'c'}, binary.AppendUvarint(nil, math.MaxUint64)} {
		if v, rest, ok := CutLenBytes(in); ok || v != nil || !bytes.Equal(rest, in) {
			t.Errorf("CutLenBytes(%v): got %v, %v, %v; want nil, the input, false", in, v, rest, ok)
		}
	}
}

func TestUvarintLen(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<63 - 1, math.MaxUint64} {
		if got, want := UvarintLen(v), len(binary.AppendUvarint(nil, v)); got != want {
			t.Errorf("UvarintLen(%d) = %d; want %d", v, got, want)
		}
	}
}

// FuzzReader reads arbitrary input with every method: the reader must not
// panic, must not report more bytes than it has, and once failed returns
// zero values.
func FuzzReader(f *testing.F) {
	f.Add([]byte{}, []byte{0})
	f.Add(AppendString(binary.AppendVarint(nil, -5), "abc"), []byte{4, 8, 7})
	f.Add(bytes.Repeat([]byte{0xff}, 12), []byte{3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, in, ops []byte) {
		r := NewReader(in)
		for _, op := range ops {
			before := r.Len()
			switch op % 10 {
			case 0:
				r.Byte()
			case 1:
				r.Uint32()
			case 2:
				r.Uint64()
			case 3:
				r.Uvarint()
			case 4:
				r.Varint()
			case 5:
				r.Bytes(int(op / 10))
			case 6:
				r.Count(int(op/10) + 1)
			case 7:
				r.LenBytes()
			case 8:
				r.LenString()
			case 9:
				r.More()
			}
			if r.Len() > before {
				t.Fatalf("op %d: Len grew from %d to %d", op%10, before, r.Len())
			}
			if r.Err() != nil && (r.Len() != 0 || r.Uvarint() != 0 || r.LenBytes() != nil) {
				t.Fatalf("op %d: a failed reader still reads", op%10)
			}
		}
	})
}
