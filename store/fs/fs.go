package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dmlproject/dml/store"
)

// Layout of the root directory:
//
//	root/
//	  .lock        flock held by the one process that owns the directory
//	  _tmp/        bodies being written; renamed into place when complete
//	  blobs/…      the keys, one file each (the layout is store's)
//	  uploads/…
const (
	lockName = ".lock"
	tmpName  = "_tmp"
)

// ErrInvalidKey is returned for a key that could name a path outside the
// root or one of the reserved names above.
var ErrInvalidKey = errors.New("invalid key")

// Backend stores keys as files under a root directory.
type Backend struct {
	root string
	tmp  string
	lock *os.File
}

var (
	_ store.Backend  = (*Backend)(nil)
	_ store.Sweeper  = (*Backend)(nil)
	_ store.Kinder   = (*Backend)(nil)
	_ store.Appender = (*Backend)(nil)
	_ store.Stager   = (*Backend)(nil)
)

// New opens (creating it if needed) the directory root and takes an
// exclusive lock on it. It fails if another process holds the lock. Call
// Close to release it.
//
// Because the lock guarantees that no other process writes under root, and
// this one has not started any write yet, every temporary file found at
// open is what a killed process left behind: New removes them all, instead
// of waiting for a sweep by age.
func New(root string) (*Backend, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("fs: root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("fs: create root: %w", err)
	}
	lock, err := lockDir(filepath.Join(abs, lockName))
	if err != nil {
		return nil, fmt.Errorf("fs: %s: %w", abs, err)
	}
	b := &Backend{root: abs, tmp: filepath.Join(abs, tmpName), lock: lock}
	if err := os.MkdirAll(b.tmp, 0o750); err != nil {
		b.Close()
		return nil, fmt.Errorf("fs: create temporary directory: %w", err)
	}
	if _, err := b.sweep(func(os.FileInfo) bool { return true }); err != nil {
		b.Close()
		return nil, fmt.Errorf("fs: remove temporary files left by a previous process: %w", err)
	}
	return b, nil
}

// Root is the absolute path of the directory.
func (b *Backend) Root() string { return b.root }

// Close releases the directory lock. The backend must not be used after.
func (b *Backend) Close() error {
	if b.lock == nil {
		return nil
	}
	err := unlockDir(b.lock)
	b.lock = nil
	if err != nil {
		return fmt.Errorf("fs: release lock on %s: %w", b.root, err)
	}
	return nil
}

// Put writes r to a temporary file, fsyncs it and renames it to key, so
// the key never holds a partial body. A full filesystem fails the write
// with store.ErrNoSpace and leaves nothing behind.
func (b *Backend) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if _, err := b.path(key); err != nil {
		return err
	}
	st, err := b.stage(ctx, "put "+key, r, size)
	if err != nil {
		return err
	}
	return st.Commit(ctx, key)
}

// Stage writes r to a temporary file that no key names yet (store.Stager):
// Commit gives it its key, with the same one fsync of the file and one of
// its directory as Put, so a body whose key is known only once it has been
// read (its digest) is written once, not written and then moved.
func (b *Backend) Stage(ctx context.Context, r io.Reader, size int64) (store.Staged, error) {
	return b.stage(ctx, "stage", r, size)
}

func (b *Backend) stage(ctx context.Context, op string, r io.Reader, size int64) (_ *staged, err error) {
	f, err := os.CreateTemp(b.tmp, "put-*")
	if err != nil {
		return nil, fmt.Errorf("fs: %s: %w", op, translate(err))
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	// Read ahead of the writes (the body is hashed as it is read), and
	// have the kernel write each part to disk as soon as it is complete:
	// the fsync at the end then waits for the last part, not for all of
	// it, as a write of the whole body into the page cache would.
	n, err := store.Copy(&writebackFile{f: f}, &ctxReader{ctx: ctx, r: r}, -1)
	if err != nil {
		return nil, fmt.Errorf("fs: %s: %w", op, translate(err))
	}
	if size >= 0 && n != size {
		return nil, fmt.Errorf("fs: %s: %w: %d bytes declared, %d read", op, store.ErrSizeMismatch, size, n)
	}
	return &staged{b: b, f: f}, nil
}

// staged is a body written to a temporary file by Stage.
type staged struct {
	b *Backend
	f *os.File
}

// Commit fsyncs the file and renames it to key.
func (s *staged) Commit(ctx context.Context, key string) (err error) {
	defer func() {
		if err != nil {
			_ = s.f.Close()
			_ = os.Remove(s.f.Name())
		}
	}()
	dst, err := s.b.path(key)
	if err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fs: put %s: %w", key, translate(err))
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("fs: put %s: %w", key, translate(err))
	}
	if err := s.b.rename(s.f.Name(), dst); err != nil {
		return fmt.Errorf("fs: put %s: %w", key, translate(err))
	}
	return nil
}

// appendBuffer is the copy buffer of Append: large writes, few syscalls.
const appendBuffer = 1 << 20

// Append moves src to dst by a rename, cuts the file to offset bytes and
// writes r after them, then fsyncs the file and the directories it
// changed (store.Appender). The rename is atomic, so of concurrent
// Appends from one src exactly one finds it.
func (b *Backend) Append(ctx context.Context, src, dst string, offset int64, r io.Reader, size int64) (int64, error) {
	to, err := b.path(dst)
	if err != nil {
		return 0, err
	}
	fail := func(err error) error { return fmt.Errorf("fs: append to %s: %w", dst, translate(err)) }
	if err := b.mkdirs(filepath.Dir(to)); err != nil {
		return 0, fail(err)
	}
	var f *os.File
	from := ""
	if src == "" {
		if offset != 0 {
			return 0, fail(fmt.Errorf("%w: a new object starts at 0, not %d", store.ErrInvalidRange, offset))
		}
		f, err = os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, iofs.ErrExist) {
			return 0, fail(fmt.Errorf("%w: %s exists already", store.ErrNotFound, dst))
		}
	} else {
		if from, err = b.path(src); err != nil {
			return 0, err
		}
		if err := os.Rename(from, to); err != nil {
			return 0, fail(err)
		}
		f, err = os.OpenFile(to, os.O_WRONLY, 0)
	}
	if err != nil {
		return 0, fail(err)
	}
	// undo puts the object back as it was found: its first offset bytes,
	// under src.
	undo := func() {
		_ = f.Truncate(offset)
		_ = f.Close()
		if from == "" {
			_ = os.Remove(to)
		} else {
			_ = os.Rename(to, from)
		}
	}
	n, changed, err := appendAt(ctx, f, offset, r, size)
	if err != nil {
		undo()
		return 0, fail(err)
	}
	if err := f.Close(); err != nil {
		undo()
		return 0, fail(err)
	}
	if !changed && src != "" {
		// Only moved: the move is left to the next fsync of the
		// directory (see store.Appender).
		return 0, nil
	}
	if err := syncDir(filepath.Dir(to)); err != nil {
		return n, fail(err)
	}
	if from != "" && filepath.Dir(from) != filepath.Dir(to) {
		if err := syncDir(filepath.Dir(from)); err != nil {
			return n, fail(err)
		}
	}
	return n, nil
}

// appendAt cuts f to offset bytes, writes r after them and fsyncs f
// when that changed it (which it reports).
func appendAt(ctx context.Context, f *os.File, offset int64, r io.Reader, size int64) (int64, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	if fi.Size() < offset {
		return 0, false, fmt.Errorf("%w: it holds %d bytes, not %d", store.ErrInvalidRange, fi.Size(), offset)
	}
	cut := fi.Size() > offset
	if cut {
		if err := f.Truncate(offset); err != nil {
			return 0, false, err
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, false, err
	}
	// The struct hides the file's ReadFrom, which would copy through a
	// 32 KiB buffer of its own.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, &ctxReader{ctx: ctx, r: r}, make([]byte, appendBuffer))
	if err != nil {
		return n, false, err
	}
	if size >= 0 && n != size {
		return n, false, fmt.Errorf("%w: %d bytes declared, %d read", store.ErrSizeMismatch, size, n)
	}
	if !cut && n == 0 {
		return 0, false, nil
	}
	if err := f.Sync(); err != nil {
		return n, false, err
	}
	return n, true, nil
}

// Discard removes the file.
func (s *staged) Discard() error {
	_ = s.f.Close()
	if err := os.Remove(s.f.Name()); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("fs: discard %s: %w", s.f.Name(), err)
	}
	return nil
}

// writebackChunk is how much of a body is written before the kernel is
// asked to start writing it to disk.
const writebackChunk = 8 << 20

// writebackFile starts the writeback of each writebackChunk written.
type writebackFile struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // bytes whose writeback was started
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackChunk {
		startWriteback(w.f, w.started, w.off-w.started)
		w.started = w.off
	}
	return n, err
}

// Get opens key and positions it at offset.
func (b *Backend) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("fs: get %s: %w", key, translate(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fs: get %s: %w", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("fs: get %s: %w", key, store.ErrNotFound)
	}
	if offset < 0 || offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("fs: get %s: %w: offset %d, size %d", key, store.ErrInvalidRange, offset, fi.Size())
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("fs: get %s: %w", key, err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Stat reports the size and modification time of key.
func (b *Backend) Stat(ctx context.Context, key string) (store.Info, error) {
	p, err := b.path(key)
	if err != nil {
		return store.Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return store.Info{}, fmt.Errorf("fs: stat %s: %w", key, translate(err))
	}
	if fi.IsDir() {
		return store.Info{}, fmt.Errorf("fs: stat %s: %w", key, store.ErrNotFound)
	}
	return store.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag(fi)}, nil
}

// Move renames src to dst.
func (b *Backend) Move(ctx context.Context, src, dst string) error {
	from, err := b.path(src)
	if err != nil {
		return err
	}
	to, err := b.path(dst)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(from); err != nil {
		return fmt.Errorf("fs: move %s: %w", src, translate(err))
	} else if fi.IsDir() {
		return fmt.Errorf("fs: move %s: %w", src, store.ErrNotFound)
	}
	if err := b.rename(from, to); err != nil {
		return fmt.Errorf("fs: move %s to %s: %w", src, dst, translate(err))
	}
	return nil
}

// Delete removes key. Empty parent directories are kept: removing them
// would race with a concurrent Put creating a file in them.
func (b *Backend) Delete(ctx context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return nil // a directory is not a key
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("fs: delete %s: %w", key, err)
	}
	return nil
}

// List calls fn for every file whose key starts with prefix.
func (b *Backend) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	// Walk only the deepest directory the prefix names completely.
	dir := prefix[:strings.LastIndex(prefix, "/")+1]
	if dir != "" {
		if err := checkKey(strings.TrimSuffix(dir, "/")); err != nil {
			return fmt.Errorf("fs: list %q: %w", prefix, err)
		}
	}
	start := filepath.Join(b.root, filepath.FromSlash(dir))
	err := filepath.WalkDir(start, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil // nothing under the prefix, or removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p == start {
				return nil
			}
			if key == tmpName || !related(key+"/", prefix) {
				return filepath.SkipDir
			}
			return nil
		}
		if key == lockName || !strings.HasPrefix(key, prefix) || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			return nil // deleted while walking
		} else if err != nil {
			return err
		}
		return fn(store.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag(fi)})
	})
	if err != nil {
		return fmt.Errorf("fs: list %q: %w", prefix, err)
	}
	return nil
}

// related reports whether directory dir (ending in "/") can hold keys
// that start with prefix.
func related(dir, prefix string) bool {
	return strings.HasPrefix(dir, prefix) || strings.HasPrefix(prefix, dir)
}

// Ping checks that the root and its temporary directory are still there.
// Kind names this backend for monitoring (store.Kinder).
func (b *Backend) Kind() string { return "fs" }

func (b *Backend) Ping(ctx context.Context) error {
	fi, err := os.Stat(b.tmp)
	if err != nil {
		return fmt.Errorf("fs: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("fs: %s is not a directory", b.tmp)
	}
	return nil
}

// Sweep removes temporary files last written before startedBefore. A write
// in progress touches its file with every chunk, so only writes that
// stalled for that long are removed.
func (b *Backend) Sweep(ctx context.Context, startedBefore time.Time) (int, error) {
	n, err := b.sweep(func(fi os.FileInfo) bool { return fi.ModTime().Before(startedBefore) })
	if err != nil {
		return n, fmt.Errorf("fs: sweep: %w", err)
	}
	return n, nil
}

func (b *Backend) sweep(stale func(os.FileInfo) bool) (int, error) {
	entries, err := os.ReadDir(b.tmp)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue // renamed into place meanwhile
		} else if err != nil {
			return removed, err
		}
		if !stale(fi) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(b.tmp, e.Name())); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// path maps a key to its file, refusing anything that could leave the root.
func (b *Backend) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// checkKey accepts relative slash-separated paths whose segments are all
// non-empty and neither "." nor "..", and which do not start with a
// reserved name.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if strings.ContainsRune(key, 0) {
		return fmt.Errorf("%w: %q contains NUL", ErrInvalidKey, key)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: %q is absolute", ErrInvalidKey, key)
	}
	for i, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w: %q has an empty segment", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, key, seg)
		case i == 0 && (seg == tmpName || seg == lockName):
			return fmt.Errorf("%w: %q is reserved", ErrInvalidKey, key)
		}
	}
	return nil
}

// rename moves a file into place, creating parent directories, and fsyncs
// the directory it moved into so the rename survives a power loss. The
// directory it left is not synced: after a crash its old name may come
// back (it is a temporary file or a staging object, which New and the
// staging sweeps remove), but the new one cannot be lost.
func (b *Backend) rename(from, to string) error {
	dir := filepath.Dir(to)
	if err := b.mkdirs(dir); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return syncDir(dir)
}

// mkdirs is os.MkdirAll that also fsyncs the parent of every directory
// it creates.
func (b *Backend) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && dir != b.root {
		if err := b.mkdirs(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			return nil // created by a concurrent Put
		}
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// translate is the one place operating system errors become store errors.
func translate(err error) error {
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// A full filesystem, or the owner's quota, both mean the same to
		// the store: no room for this write.
		return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
	}
	return err
}

// ctxReader stops a copy when the request that feeds it is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
