//go:build unix

package files

import (
	"os"
	"syscall"
)

// fileIdentity returns the device and inode of fi and its link count
// (0 once the file was deleted).
func fileIdentity(fi os.FileInfo, _ string) (id fileID, nlink uint64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 1
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, uint64(st.Nlink)
}
