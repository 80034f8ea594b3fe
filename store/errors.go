package store

import (
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Sentinel errors. They are wrapped with context (the digest, the key) and
// tested with errors.Is.
var (
	// ErrNotFound: no blob or object under that digest or key.
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch: the body did not hash to the digest it was sent with.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: the body was shorter or longer than declared.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrInvalidDigest: the digest string is malformed or uses an
	// unsupported algorithm.
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrTooLarge: the body exceeds what the backend can hold.
	ErrTooLarge = errors.New("object too large")
	// ErrInvalidRange: offset/length outside the blob.
	ErrInvalidRange = errors.New("invalid range")
	// ErrUnavailable: the backend cannot be reached (connection refused,
	// timed out, or the server answered that it is unavailable). Nothing
	// is wrong with the request: it may succeed when retried later.
	ErrUnavailable = errors.New("storage unavailable")
	// ErrNoSpace: the backend has no room left for the write (a full
	// filesystem or an exhausted quota). What was being written is gone;
	// what was stored before is intact.
	ErrNoSpace = errors.New("no space left in storage")
	// ErrCorrupt: a stored blob's bytes do not hash to its digest, or it
	// is not the size it should be. Unlike ErrDigestMismatch and
	// ErrSizeMismatch, which blame a body being written, it blames what is
	// stored; the two are never wrapped together.
	ErrCorrupt = errors.New("stored blob is corrupt")
)

// CorruptError says which stored blob is corrupt and why. It matches
// ErrCorrupt, and only ErrCorrupt: the mismatch it describes is the
// stored copy's, not a body's being written.
type CorruptError struct {
	Digest digest.Digest
	// Reason is what is wrong: the digest its bytes hash to, or its size.
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrCorrupt, e.Digest, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// corrupt reports d corrupt, the reason taken from the verification error.
func corrupt(d digest.Digest, reason string) error {
	return &CorruptError{Digest: d, Reason: reason}
}
