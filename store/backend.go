package store

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Backend is the storage driver underneath Store. Keys are slash-separated
// relative paths such as "blobs/sha256/ab/abcd…" or "uploads/<id>".
//
// Implementations must satisfy the contract checked by store/storetest:
//   - Put makes key visible only if r returned io.EOF (never when r returned
//     another error) and only with the complete body: a reader that fails
//     aborts the write and leaves nothing behind under key.
//   - Put of an existing key replaces it atomically; concurrent Puts of the
//     same key leave one complete object.
//   - Missing keys are reported as an error that errors.Is(err, ErrNotFound).
type Backend interface {
	// Put stores the body read from r under key. size is the exact length
	// when known, or -1.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens key for reading from offset. length < 0 reads to the end.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat reports the size and modification time of key.
	Stat(ctx context.Context, key string) (Info, error)
	// Move renames src to dst; dst is replaced if it exists.
	Move(ctx context.Context, src, dst string) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every key under prefix, in no particular order.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Ping reports whether the backend is reachable (for /readyz).
	Ping(ctx context.Context) error
}

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag is an opaque token that changes whenever the object is written,
	// where the backend has one: the S3 ETag, or on a Unix filesystem the
	// file's device, inode and change time (which, unlike the modification
	// time, no one can set back). Empty otherwise.
	ETag string
}

// Fingerprint names the state of the object as Stat saw it: its size,
// modification time and ETag. A write of the object, even one that keeps
// its size and modification time, gives it another fingerprint on every
// backend with an ETag; so a blob verified with one fingerprint and found
// with another has been written since. Compare fingerprints from Stat
// only: listings may report times at another precision.
func (i Info) Fingerprint() string {
	return fmt.Sprintf("%d/%d/%s", i.Size, i.ModTime.UnixNano(), i.ETag)
}

// Sweeper is implemented by backends that keep hidden partial state of their
// own (S3 incomplete multipart uploads, temporary files) which must be
// removed after a crash. Store calls it from CleanStaging.
type Sweeper interface {
	// Sweep removes partial writes started before the given time.
	Sweep(ctx context.Context, startedBefore time.Time) (removed int, err error)
}

// SizeLimiter is implemented by backends that cannot store objects above a
// certain size (S3 multipart: part size × 10,000 parts).
type SizeLimiter interface {
	MaxObjectSize() int64
}

// Appender is implemented by backends that can grow an object in place.
// The store then stages a chunked upload as one object that each chunk
// extends and that becomes the blob by a rename (upload.go), so each byte
// is written once; without it every chunk is an object of its own, read
// back when the upload completes.
type Appender interface {
	// Append moves the object src to dst, keeps its first offset bytes and
	// writes r (size bytes, or -1 when unknown) after them. It returns
	// the number of bytes of r written, and they are durable when it
	// returns. A move that neither writes nor cuts anything may be undone
	// by a power loss (the object is then under src, as it was); callers
	// that need it kept move the object on with Move, which is durable.
	// With src "" it starts dst empty (offset must be 0) and fails if dst
	// exists.
	//
	// The move is what makes one Append of concurrent ones from the same
	// src proceed: the others find src gone (or dst there) and fail with
	// an error that errors.Is(err, ErrNotFound), touching nothing. An
	// object shorter than offset is ErrInvalidRange. If r fails, or
	// holds other than size bytes, the object is cut back to offset
	// bytes and moved back to src (removed when src is ""), and the
	// error returned.
	Append(ctx context.Context, src, dst string, offset int64, r io.Reader, size int64) (int64, error)
}

// Stager is implemented by backends that can write a body before they
// know its key and name it afterwards at no cost (the fs backend: a
// temporary file, renamed into place). The store uses it for bodies whose
// digest is known only once they have been read, instead of a Put under
// a staging key and a Move, which on S3 is the only way but on a
// filesystem costs a second rename and more fsyncs. A wrapper that
// embeds a backend and changes how its Put reads the body (fault
// injection) must do the same to Stage, which embedding promotes.
type Stager interface {
	// Stage writes the body read from r (size as in Put) where no key
	// names it. It fails, leaving nothing behind, when r returns an
	// error other than io.EOF.
	Stage(ctx context.Context, r io.Reader, size int64) (Staged, error)
}

// Staged is a body written by Stager.Stage. Exactly one of Commit and
// Discard must be called.
type Staged interface {
	// Commit makes the body durable and visible under key, replacing
	// what key held, atomically. On failure nothing is left behind.
	Commit(ctx context.Context, key string) error
	// Discard removes the body.
	Discard() error
}
