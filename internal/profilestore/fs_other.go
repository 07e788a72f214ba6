//go:build !unix

package profilestore

import (
	"fmt"
	"os"
)

// lockDir creates the lock file; without flock, two processes are not kept
// apart.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create lock file: %w", err)
	}
	return f, nil
}
