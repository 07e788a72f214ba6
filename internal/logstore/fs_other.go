//go:build !linux

package logstore

import (
	"fmt"
	"os"
	"path/filepath"
)

// punchHole is only implemented on Linux; elsewhere replaced blocks keep
// their space until the partition is dropped.
func punchHole(f *os.File, off, n int64) error { return errPunchUnsupported }

func allocatedBytes(fi os.FileInfo) int64 { return fi.Size() }

// lockDir creates the lock file but cannot lock it on this platform.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create lock file: %w", err)
	}
	return f, nil
}
