package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Replace makes path hold exactly what write produces, with mode perm,
// replacing a file that is there; on any error (write's included) path is
// left as it was and the temporary file is removed.
func Replace(path string, perm fs.FileMode, write func(io.Writer) error) error {
	return writeFile(path, perm, true, write)
}

// Create is Replace for a path that must not exist yet: the temporary
// file is hard-linked to path, which fails if path exists — the check and
// the move are one step, so a file that another process writes meanwhile
// is not overwritten either. An existing path is an error that wraps
// fs.ErrExist. Where the file system has no hard links (some network and
// FAT file systems), the check and a rename are two steps.
func Create(path string, perm fs.FileMode, write func(io.Writer) error) error {
	return writeFile(path, perm, false, write)
}

// Bytes is the write function of a file that holds b.
func Bytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}

func writeFile(path string, perm fs.FileMode, replace bool, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = tmp.Close()
		}
		if err != nil || !replace {
			_ = os.Remove(tmp.Name()) // after a link, only the temporary name goes
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	// CreateTemp makes 0600 files; the caller says what the file is.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	closed = true
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = linkNoClobber(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// linkNoClobber gives the file at tmp the name path unless path exists.
func linkNoClobber(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, statErr := os.Lstat(path); statErr == nil {
		return &fs.PathError{Op: "link", Path: path, Err: fs.ErrExist}
	}
	return os.Rename(tmp, path)
}

// syncDir makes a new name durable. It is best effort: some platforms and
// file systems cannot sync a directory, and the data itself is synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
