package fs

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the given range of f to
// disk now, without waiting for it (sync_file_range with
// SYNC_FILE_RANGE_WRITE: data only, no metadata, no barrier). It is a hint
// that the fsync at the end replaces: durability never depends on it.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
