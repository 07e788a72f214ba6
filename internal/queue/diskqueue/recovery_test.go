package diskqueue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigilhq/vigil/internal/auth"
)

// TestTornTail damages the end of the last segment the way a crash can and
// checks that reopening keeps every whole record before the damage, and
// that records published afterwards follow them without stale bytes
// between.
func TestTornTail(t *testing.T) {
	lastRecord := recordSize(defaultTenantLen, 1, 2) // "k" + "vN"
	f := func(name string, damage func(path string) error, wantKept int) {
		t.Helper()
		dir := t.TempDir()
		q := mustOpen(t, dir)
		publishAll(t, q, "k", numbered("v", 5))
		mustClose(t, q)
		path := lastSegment(t, dir)
		if err := damage(path); err != nil {
			t.Fatalf("%s: %v", name, err)
		}

		q = mustOpen(t, dir)
		defer mustClose(t, q)
		if got, want := fileSize(t, path), segmentHeaderSize+int64(wantKept)*lastRecord; got != want {
			t.Fatalf("%s: segment has %d bytes after reopen; want %d (torn tail truncated)", name, got, want)
		}
		mustPublish(t, q, "k", "after")
		want := withKey("k", append(numbered("v", 5)[:wantKept], "after"))
		if got := values(fetchAll(t, q)); !slices.Equal(got, want) {
			t.Fatalf("%s: got %v; want %v", name, got, want)
		}
	}
	appendBytes := func(b []byte) func(string) error {
		return func(path string) error {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write(b)
			return errors.Join(err, f.Close())
		}
	}
	cut := func(n int64) func(string) error {
		return func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, fi.Size()-n)
		}
	}
	flipLastByte := func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b[len(b)-1] ^= 0x40
		return os.WriteFile(path, b, 0o644)
	}
	f("garbage appended", appendBytes([]byte("\x00\x00\x00\x10garbage that is not a record")), 5)
	f("zeros appended", appendBytes(make([]byte, 4096)), 5)
	f("half a record appended", appendBytes(appendRecord(nil, auth.DefaultTenant, "k", []byte("lost"))[:12]), 5)
	f("cut inside the last value", cut(1), 4)
	f("cut inside the last header", cut(lastRecord-3), 4)
	f("cut at a record boundary", cut(lastRecord), 4)
	f("last record fails its checksum", flipLastByte, 4)
}

func TestTornSegmentHeader(t *testing.T) {
	f := func(name string, content []byte) {
		t.Helper()
		dir := t.TempDir()
		q := mustOpen(t, dir)
		publishAll(t, q, "k", numbered("v", 3))
		mustClose(t, q)
		// A crash just after the producer created the next segment.
		next := filepath.Join(dir, segmentName(3*recordSize(defaultTenantLen, 1, 2)))
		if err := os.WriteFile(next, content, 0o644); err != nil {
			t.Fatal(err)
		}
		q = mustOpen(t, dir)
		defer mustClose(t, q)
		mustPublish(t, q, "k", "after")
		want := withKey("k", append(numbered("v", 3), "after"))
		if got := values(fetchAll(t, q)); !slices.Equal(got, want) {
			t.Fatalf("%s: got %v; want %v", name, got, want)
		}
	}
	f("empty file", nil)
	f("half a header", segmentMagic[:3])
	f("zeroed header", make([]byte, segmentHeaderSize))
}

func TestForeignSegmentIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segmentName(0)), []byte("PK\x03\x04 a zip file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if q, err := Open(testOptions(dir)); err == nil {
		q.Close()
		t.Fatalf("Open of a directory whose segment is not a queue segment succeeded; want an error")
	}
}

// TestCorruptionIsReported checks that damage before the durable end is
// reported, not skipped: skipping would lose acknowledged batches silently.
func TestCorruptionIsReported(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir)
	publishAll(t, q, "k", numbered("v", 3))
	mustClose(t, q)
	path := lastSegment(t, dir)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[segmentHeaderSize+recordSize(defaultTenantLen, 1, 2)+recordOverhead+int64(defaultTenantLen)] ^= 1 // the key of v1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Opened alone, the consumer trusts the head file: the damage is in
	// what the producer reported durable, as after bit rot on the disk.
	c, err := OpenConsumer(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	if m := mustFetch(t, c); string(m.Value) != "v0" {
		t.Fatalf("first message is %q; want v0", m.Value)
	}
	if _, err := c.Fetch(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Fetch of a damaged record: got %v; want ErrCorrupt", err)
	}
}
