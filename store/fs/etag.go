//go:build linux || darwin

package fs

import (
	"fmt"
	"os"
	"syscall"
)

// etag names the file's identity and its last change: device, inode and
// ctime. The kernel moves ctime on every write, rename and chmod, and no
// system call sets it back, so a file rewritten in place with its
// modification time restored still gets a new etag.
func etag(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	sec, nsec := ctime(st)
	return fmt.Sprintf("%x-%x-%x.%09d", uint64(st.Dev), uint64(st.Ino), sec, nsec)
}
