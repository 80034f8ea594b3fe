package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// ReadSeeker presents a stored blob of known size as an io.ReadSeeker
// without reading anything until Read is called, so http.ServeContent can
// answer Range requests with one ranged backend read.
type ReadSeeker struct {
	ctx    context.Context
	store  *Store
	digest digest.Digest
	size   int64
	pos    int64
	rc     io.ReadCloser
}

// ReadSeeker returns a lazily opened reader over blob d of the given size.
// Close it when done.
func (s *Store) ReadSeeker(ctx context.Context, d digest.Digest, size int64) *ReadSeeker {
	return &ReadSeeker{ctx: ctx, store: s, digest: d, size: size}
}

func (r *ReadSeeker) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.rc == nil {
		rc, err := r.store.Open(r.ctx, r.digest, r.pos, -1)
		if err != nil {
			return 0, err
		}
		r.rc = rc
	}
	n, err := r.rc.Read(p)
	r.pos += int64(n)
	if errors.Is(err, io.EOF) && r.pos < r.size {
		return n, fmt.Errorf("blob %s: %w: ended at %d of %d bytes", r.digest, ErrSizeMismatch, r.pos, r.size)
	}
	return n, err
}

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
	if abs != r.pos && r.rc != nil {
		_ = r.rc.Close()
		r.rc = nil
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
