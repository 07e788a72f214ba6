//go:build unix

package diskqueue

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile opens path and takes an exclusive, non-blocking flock on it. The
// lock belongs to the open file description, so it conflicts with another
// lockFile of the same path even within one process, and the kernel drops it
// when the process dies.
func lockFile(path, role string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		_ = f.Close() // the lock error is the one to report
		return nil, fmt.Errorf("queue directory is already open by another %s (lock file %s is held): %w", role, path, ErrLocked)
	}
	if err != nil {
		_ = f.Close() // the lock error is the one to report
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return f, nil
}
