package fs

import (
	"fmt"
	"os"
)

// etag names the file's identity and its last change: device, inode and
// ctime. The kernel moves ctime on every write, rename and chmod, and no
// system call sets it back, so a file rewritten in place with its
// modification time restored still gets a new etag. It is empty where the
// change time is not available (fileIdentity says so): the size and
// modification time alone then describe the file.
func etag(fi os.FileInfo) string {
	dev, ino, sec, nsec, ok := fileIdentity(fi)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x.%09d", dev, ino, sec, nsec)
}
