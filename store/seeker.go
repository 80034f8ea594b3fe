package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// ReadSeeker presents a stored blob of known size as an io.ReadSeeker
// without reading anything until Read (or Open) is called, so
// http.ServeContent can answer Range requests with one ranged backend
// read. Seeking only moves the position; the backend reader is reopened at
// the next Read if the position moved away from it.
//
// A read that starts at offset 0 goes through a VerifyingReader: when the
// bytes do not hash to the digest, or end before or after the size, the
// Read that would deliver the last byte returns no data and an error that
// matches ErrCorrupt (a *CorruptError) instead. Whatever copies from it
// (an HTTP response) never delivers a complete body that is wrong. Reads
// from another offset (Range requests) cannot be checked that way: the
// caller verifies the whole blob first when it has to (see Verify).
type ReadSeeker struct {
	ctx    context.Context
	store  *Store
	digest digest.Digest
	size   int64
	pos    int64
	rc     io.ReadCloser
	rcPos  int64 // where rc will read next
	// vr verifies a read that started at offset 0; nil otherwise.
	vr *VerifyingReader
}

// ReadSeeker returns a lazily opened reader over blob d of the given size.
// Close it when done.
func (s *Store) ReadSeeker(ctx context.Context, d digest.Digest, size int64) *ReadSeeker {
	return &ReadSeeker{ctx: ctx, store: s, digest: d, size: size}
}

// OpenReadSeeker is ReadSeeker, opened at once (see Open). Servers use it:
// once a response has started, a backend error can no longer change its
// status, so the backend is reached before anything is written.
func (s *Store) OpenReadSeeker(ctx context.Context, d digest.Digest, size int64) (*ReadSeeker, error) {
	r := s.ReadSeeker(ctx, d, size)
	if err := r.Open(); err != nil {
		return nil, err
	}
	return r, nil
}

// Open opens the backend reader at the current position now rather than
// at the first Read, so that a backend that cannot serve the blob (it is
// unreachable, or the blob is gone) is an error before anything was
// written to a client. The reader serves the next Read if the position
// has not moved by then, as it does not for a whole-blob GET.
func (r *ReadSeeker) Open() error {
	if r.rc != nil {
		_ = r.rc.Close()
		r.rc, r.vr = nil, nil
	}
	rc, err := r.store.Open(r.ctx, r.digest, r.pos, -1)
	if err != nil {
		return err
	}
	r.rc, r.rcPos = rc, r.pos
	if r.pos == 0 {
		r.vr = NewVerifyingReader(rc, r.digest, r.size, -1)
	}
	return nil
}

func (r *ReadSeeker) Read(p []byte) (int, error) {
	if r.rc == nil || r.rcPos != r.pos {
		if r.pos >= r.size && r.pos > 0 {
			return 0, io.EOF
		}
		if err := r.Open(); err != nil {
			return 0, err
		}
	}
	if r.vr != nil {
		// Read through to the verifying reader's EOF even at the size: a
		// stored copy longer than its size is corrupt too.
		n, err := r.vr.Read(p)
		if errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrSizeMismatch) {
			// Withhold the bytes of this Read: they include the last one.
			return 0, r.corrupt(err)
		}
		r.pos += int64(n)
		r.rcPos = r.pos
		return n, err
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n, err := r.rc.Read(p)
	r.pos += int64(n)
	r.rcPos = r.pos
	if errors.Is(err, io.EOF) && r.pos < r.size {
		return n, r.corrupt(fmt.Errorf("%w: ended at %d of %d bytes", ErrSizeMismatch, r.pos, r.size))
	}
	return n, err
}

// WriteTo writes the blob from the current position to its end to w
// (io.WriterTo, which io.Copy prefers), with the reads (and the hash of a
// whole read) one buffer ahead of the writes on another goroutine (see
// Copy). A whole read that finds the bytes wrong fails as Read does,
// before the last byte is written.
func (r *ReadSeeker) WriteTo(w io.Writer) (int64, error) {
	return Copy(w, r, -1)
}

func (r *ReadSeeker) corrupt(err error) error {
	return corrupt(r.digest, err.Error())
}

// Verified reports whether the reader has read the whole blob from offset
// 0 and found that it hashes to its digest.
func (r *ReadSeeker) Verified() bool { return r.vr != nil && r.vr.Verified() }

func (r *ReadSeeker) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("%w: bad whence %d", ErrInvalidRange, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("%w: negative position", ErrInvalidRange)
	}
	r.pos = abs
	return abs, nil
}

// Close releases the backend reader, if one was opened.
func (r *ReadSeeker) Close() error {
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}
