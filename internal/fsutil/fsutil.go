// Package fsutil makes files durable: atomic replacement through a
// temporary file and a rename, directory syncs and fdatasync. Every store,
// queue and state file of Vigil that must survive a crash is written
// through it.
//
// A file replaced with WriteFileAtomic or a PendingFile is, after a crash
// at any point, either its old content or its new content, never a mix:
// the new content is written under path+".tmp", synced, renamed over path,
// and the directory is synced so that the rename itself is durable. A
// stale ".tmp" file left by a crash is overwritten by the next write.
package fsutil

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TmpSuffix is appended to a path to name the temporary file its new
// content is written to.
const TmpSuffix = ".tmp"

// SyncDir makes the entries of dir durable: the files created, renamed or
// removed in it.
func SyncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- the caller's own path under the operator's data directory
	if err != nil {
		return fmt.Errorf("cannot open directory %s to sync it: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic replaces the file at path with data, creating it with
// perm if it does not exist.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return Syncs{}.WriteFileAtomic(path, data, perm)
}

// Syncs choose how WriteFileAtomic and Create make a file and its directory
// durable. The zero value fsyncs the file and opens the directory to fsync
// it; a caller that times its syncs or keeps its directory open sets them.
type Syncs struct {
	// File syncs the written file; nil means (*os.File).Sync.
	File func(*os.File) error
	// Dir is the file's directory, already open, synced with File after
	// the rename; nil means SyncDir.
	Dir *os.File
}

// WriteFileAtomic is WriteFileAtomic with these syncs.
func (s Syncs) WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := s.Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("cannot write %s: %w", f.Name(), err)
	}
	return f.Commit()
}

// Create starts replacing the file at path: what is written to the returned
// file replaces path when Commit is called. Abort drops it.
func (s Syncs) Create(path string, perm fs.FileMode) (*PendingFile, error) {
	tmp := path + TmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm) // #nosec G304 -- the caller's own path under the operator's data directory
	if err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", tmp, err)
	}
	return &PendingFile{File: f, path: path, syncs: s}, nil
}

// Create starts replacing the file at path with the default syncs.
func Create(path string, perm fs.FileMode) (*PendingFile, error) { return Syncs{}.Create(path, perm) }

// PendingFile is the new content of a file, written under a temporary
// name. Exactly one of Commit and Abort must be called.
type PendingFile struct {
	*os.File
	path  string
	syncs Syncs
}

// Commit syncs and closes the file, renames it over its path and syncs
// the directory. On an error before the rename the temporary file is
// removed and the old content stays.
func (f *PendingFile) Commit() error {
	sync := f.syncs.File
	if sync == nil {
		sync = (*os.File).Sync
	}
	tmp := f.Name()
	err := sync(f.File)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort: the write error is the one to report
		return fmt.Errorf("cannot write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		_ = os.Remove(tmp) // best effort: the write error is the one to report
		return fmt.Errorf("cannot replace %s: %w", f.path, err)
	}
	if f.syncs.Dir == nil {
		return SyncDir(filepath.Dir(f.path))
	}
	if err := sync(f.syncs.Dir); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", filepath.Dir(f.path), err)
	}
	return nil
}

// Abort closes and removes the temporary file; the old content stays.
func (f *PendingFile) Abort() {
	_ = f.Close()           // the content is thrown away
	_ = os.Remove(f.Name()) // best effort: a leftover temporary file is not read as data
}
