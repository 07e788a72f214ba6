//go:build !unix

package dump

import "os"

// tryLock cannot tell a live process's crash file from a dead one's here;
// on Windows, an open file cannot be removed, which protects it instead.
func tryLock(*os.File) bool { return true }

// processAlive cannot tell here; no process is watched (see Watch).
func processAlive(int) bool { return false }
