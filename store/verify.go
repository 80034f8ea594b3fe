package store

import (
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// VerifyingReader hashes and counts what passes through it. When the body
// ends with the wrong digest or size it returns an error instead of io.EOF,
// so whatever copies from it (os file writes, minio-go uploads) aborts
// before the data is committed.
//
// When the size is known the check happens on the Read that delivers the
// last byte: HTTP clients stop reading at Content-Length and would never
// ask for the EOF.
type VerifyingReader struct {
	r        io.Reader
	expected digest.Digest
	digester digest.Digester
	size     int64 // expected size or -1
	max      int64 // hard cap or -1
	n        int64
	err      error
	verified bool
}

// NewVerifyingReader wraps r. expected may be empty (hash only); size and
// max may be -1 (unknown, unlimited).
func NewVerifyingReader(r io.Reader, expected digest.Digest, size, max int64) *VerifyingReader {
	alg := digest.Canonical
	if expected != "" {
		alg = expected.Algorithm()
	}
	return &VerifyingReader{r: r, expected: expected, digester: alg.Digester(), size: size, max: max}
}

func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.verified {
		return 0, io.EOF
	}
	if v.size >= 0 && int64(len(p)) > v.size-v.n+1 {
		// Read at most one byte past the declared size, to notice overlong bodies.
		p = p[:v.size-v.n+1]
	}
	n, err := v.r.Read(p)
	if n > 0 {
		v.digester.Hash().Write(p[:n])
		v.n += int64(n)
	}
	switch {
	case v.size >= 0 && v.n > v.size:
		return n, v.fail(fmt.Errorf("%w: body longer than the declared %d bytes", ErrSizeMismatch, v.size))
	case v.max >= 0 && v.n > v.max:
		return n, v.fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, v.max))
	case v.size >= 0 && v.n == v.size:
		if verr := v.check(); verr != nil {
			return n, verr
		}
		if err != nil && err != io.EOF {
			// The bytes are all there, but the body did not end cleanly.
			// Keep failing: a caller that drops an error delivered with
			// data (minio-go does) must not see io.EOF on its next Read.
			return n, v.fail(err)
		}
		// Deliver the last bytes together with EOF.
		return n, io.EOF
	case err == io.EOF:
		if v.size >= 0 {
			return n, v.fail(fmt.Errorf("%w: body ended after %d of %d bytes", ErrSizeMismatch, v.n, v.size))
		}
		if verr := v.check(); verr != nil {
			return n, verr
		}
		return n, io.EOF
	case err != nil:
		return n, v.fail(err)
	}
	return n, nil
}

func (v *VerifyingReader) check() error {
	if v.expected != "" && v.digester.Digest() != v.expected {
		return v.fail(fmt.Errorf("%w: expected %s, body hashes to %s", ErrDigestMismatch, v.expected, v.digester.Digest()))
	}
	v.verified = true
	return nil
}

func (v *VerifyingReader) fail(err error) error {
	v.err = err
	return err
}

// Err is the verification (or underlying read) error, if any.
func (v *VerifyingReader) Err() error { return v.err }

// Verified reports whether the whole body was read and matched.
func (v *VerifyingReader) Verified() bool { return v.verified }

// Count is the number of bytes read so far.
func (v *VerifyingReader) Count() int64 { return v.n }

// Digest is the digest of what was read so far.
func (v *VerifyingReader) Digest() digest.Digest { return v.digester.Digest() }
