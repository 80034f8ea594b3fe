//go:build linux

package fs

import (
	"os"
	"syscall"
)

// fileIdentity reads the device, inode and change time of a file from its
// stat_t.
func fileIdentity(fi os.FileInfo) (dev, ino uint64, sec, nsec int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, 0, false
	}
	sec, nsec = st.Ctim.Unix()
	return uint64(st.Dev), uint64(st.Ino), sec, nsec, true
}
