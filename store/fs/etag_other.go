//go:build !linux && !darwin

package fs

import "os"

// fileIdentity: the change time is not available here.
func fileIdentity(os.FileInfo) (dev, ino uint64, sec, nsec int64, ok bool) {
	return 0, 0, 0, 0, false
}
