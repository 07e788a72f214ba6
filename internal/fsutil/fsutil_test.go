package fsutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	check := func(want string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
		if _, err := os.Stat(path + TmpSuffix); !os.IsNotExist(err) {
			t.Errorf("temporary file left behind: %v", err)
		}
	}
	if err := WriteFileAtomic(path, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	check("one")
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640&^umask(t) {
		t.Errorf("got mode %v; want %v", fi.Mode().Perm(), os.FileMode(0o640&^umask(t)))
	}
	// A stale temporary file, as a crash leaves it, is overwritten.
	if err := os.WriteFile(path+TmpSuffix, []byte("stale and longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	check("two")

	// A failed write leaves the old content and no temporary file.
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), []byte("x"), 0o644); err == nil {
		t.Error("write into a missing directory: got no error")
	}
}

func umask(t *testing.T) os.FileMode {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ fi.Mode().Perm()
}

func TestPendingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "segment")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("after Abort: got %q; want the old content", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"segment"}) {
		t.Errorf("after Abort: directory holds %q; want only the file", names)
	}

	f, err = Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("before Commit: got %q; want the old content", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Errorf("after Commit: got %q; want the new content", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"segment"}) {
		t.Errorf("after Commit: directory holds %q; want only the file", names)
	}
}

// TestSyncs checks that custom syncs are used for the file and for the
// open directory, after the rename.
func TestSyncs(t *testing.T) {
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	path := filepath.Join(dir, "offset")
	var synced []string
	s := Syncs{Dir: d, File: func(f *os.File) error {
		if f == d {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("directory synced before the rename: %v", err)
			}
		}
		synced = append(synced, filepath.Base(f.Name()))
		return Fdatasync(f)
	}}
	if err := s.WriteFileAtomic(path, []byte("42"), 0o644); err != nil {
		t.Fatal(err)
	}
	if want := []string{"offset" + TmpSuffix, filepath.Base(dir)}; !slices.Equal(synced, want) {
		t.Errorf("got syncs of %q; want %q", synced, want)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Error(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("SyncDir of a missing directory: got no error")
	}
}
