package fs

import "syscall"

// ctime is the file's change time, as etag needs it.
func ctime(st *syscall.Stat_t) (sec, nsec int64) { return st.Ctim.Unix() }
