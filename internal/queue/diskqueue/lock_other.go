//go:build !unix

package diskqueue

import (
	"fmt"
	"os"
)

// lockFile only opens path: there is no flock here, so nothing stops two
// producers or two consumers from sharing a directory.
func lockFile(path, role string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file %s: %w", path, err)
	}
	return f, nil
}
