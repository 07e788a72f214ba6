package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// Fdatasync flushes a file's data and the metadata needed to read it back
// (its size) to stable storage, skipping what (*os.File).Sync also writes
// (timestamps). On a directory it behaves like fsync.
func Fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
