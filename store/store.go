package store

import (
	"context"
	_ "crypto/sha256" // registers SHA-256 for go-digest
	_ "crypto/sha512" // registers SHA-512 for go-digest
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
)

// Key layout inside a backend (the S3 key prefix, or the fs root, comes first):
//
//	blobs/
//	  sha256/
//	    ab/
//	      abcdef0123…        the bytes of blob sha256:abcdef0123…, written once
//	  sha512/
//	    cd/
//	      cdef…              sha512 blobs (OCI clients may push them)
//	uploads/
//	  <uuid>                 staging for bodies whose digest is not known up
//	                         front; moved under blobs/ after verification,
//	                         deleted on failure, swept after a crash
//	  <upload id>.<n>        a chunked upload after n chunks (upload.go): on
//	                         a backend that appends, one object that each
//	                         request moves to the next n and extends, and
//	                         that becomes the blob by a move; elsewhere
//	                         chunk n (.0, .1, …), one object per request,
//	                         streamed through Ingest when the upload
//	                         completes, then deleted
const (
	blobsPrefix   = "blobs/"
	stagingPrefix = "uploads/"
)

// Store is the content-addressed blob store, written once above any Backend.
type Store struct {
	// raw is the backend given; backend is raw timed for Observe, and
	// what every operation goes through.
	raw     Backend
	backend Backend
	maxSize int64
	log     *slog.Logger
}

// Option configures a Store.
type Option func(*Store)

// WithLogger makes the store log what it cleans up. Without it the store is silent.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithMaxSize caps the size of a single blob. The backend's own limit (see
// SizeLimiter) applies as well; the lower one wins.
func WithMaxSize(n int64) Option { return func(s *Store) { s.maxSize = n } }

// New returns a Store over b.
func New(b Backend, opts ...Option) *Store {
	s := &Store{raw: b, backend: &observedBackend{b: b}, maxSize: -1, log: slog.New(slog.DiscardHandler)}
	if l, ok := b.(SizeLimiter); ok {
		s.maxSize = l.MaxObjectSize()
	}
	for _, o := range opts {
		o(s)
	}
	if l, ok := b.(SizeLimiter); ok && (s.maxSize < 0 || l.MaxObjectSize() < s.maxSize) {
		s.maxSize = l.MaxObjectSize()
	}
	return s
}

// Backend returns the backend underneath the store.
func (s *Store) Backend() Backend { return s.raw }

// MaxSize is the largest blob the store accepts, or -1 for no limit.
func (s *Store) MaxSize() int64 { return s.maxSize }

// Blob is the result of an ingest.
type Blob struct {
	Digest digest.Digest
	Size   int64
	// Created is false when the blob was already stored and nothing was
	// written; true when the bytes were written, also over a stored copy
	// that IngestOptions.Replace asked to replace.
	Created bool
}

// IngestOptions describes what the caller knows about a body before it is read.
type IngestOptions struct {
	// Digest, when set, is the digest the body must have. The body is then
	// written straight to its final key through a reader that fails at EOF
	// on a mismatch, so the backend aborts the write.
	Digest digest.Digest
	// Size is the exact body length, or -1 when unknown.
	Size int64
	// Algorithm is used when Digest is empty; the default is SHA-256.
	Algorithm digest.Algorithm
	// Replace, when set, is asked whether a copy of the blob that is
	// already stored must be written over rather than kept (it is known
	// or suspected to be corrupt): the body is then written as if the
	// blob were new, and replaces the stored copy only once it verified.
	// It is called once the digest is known and before the store looks
	// for a stored copy: before the body is read when Digest is set,
	// after it is hashed otherwise. Its error ends the ingest.
	Replace func(digest.Digest) (bool, error)
}

// replace asks opts.Replace, if set.
func (o IngestOptions) replace(d digest.Digest) (bool, error) {
	if o.Replace == nil {
		return false, nil
	}
	return o.Replace(d)
}

// BlobKey returns the backend key of a digest.
func BlobKey(d digest.Digest) string {
	enc := d.Encoded()
	return blobsPrefix + string(d.Algorithm()) + "/" + enc[:2] + "/" + enc
}

// ValidateDigest checks that d is well formed and of a supported algorithm
// (sha256 or sha512).
func ValidateDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidDigest, d, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return fmt.Errorf("%w: %q: unsupported algorithm", ErrInvalidDigest, d)
}

// Ingest streams r into the store. It never holds the body in memory and
// never makes a blob visible before its digest is verified. When the blob
// already exists the body is still read and verified, but not written again.
func (s *Store) Ingest(ctx context.Context, r io.Reader, opts IngestOptions) (Blob, error) {
	if opts.Size < -1 {
		opts.Size = -1
	}
	if s.maxSize >= 0 && opts.Size > s.maxSize {
		return Blob{}, fmt.Errorf("%w: %d bytes declared, the limit is %d", ErrTooLarge, opts.Size, s.maxSize)
	}
	if opts.Digest != "" {
		return s.ingestKnown(ctx, r, opts)
	}
	return s.ingestStaged(ctx, r, opts)
}

func (s *Store) ingestKnown(ctx context.Context, r io.Reader, opts IngestOptions) (Blob, error) {
	d := opts.Digest
	if err := ValidateDigest(d); err != nil {
		return Blob{}, err
	}
	vr := NewVerifyingReader(r, d, opts.Size, s.maxSize)
	key := BlobKey(d)
	replace, err := opts.replace(d)
	if err != nil {
		return Blob{}, err
	}
	if _, err := s.backend.Stat(ctx, key); err == nil && !replace {
		// Already stored: prove the caller holds the same bytes, write nothing.
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return Blob{}, err
		}
		return Blob{Digest: d, Size: vr.Count(), Created: false}, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return Blob{}, fmt.Errorf("stat %s: %w", d, err)
	}
	// Put replaces a stored copy only with a body that verified: a reader
	// that fails aborts the write and leaves the old object in place.
	if err := s.backend.Put(ctx, key, vr, opts.Size); err != nil {
		return Blob{}, s.classify(vr, d, err)
	}
	if !vr.Verified() {
		// A backend that stopped reading early would break the contract;
		// never keep an object that was not verified.
		_ = s.backend.Delete(context.WithoutCancel(ctx), key)
		return Blob{}, fmt.Errorf("%w: %s: backend did not read the whole body", ErrSizeMismatch, d)
	}
	return Blob{Digest: d, Size: vr.Count(), Created: true}, nil
}

func (s *Store) ingestStaged(ctx context.Context, r io.Reader, opts IngestOptions) (Blob, error) {
	alg := opts.Algorithm
	if alg == "" {
		alg = digest.Canonical
	}
	if !alg.Available() {
		return Blob{}, fmt.Errorf("%w: algorithm %q", ErrInvalidDigest, alg)
	}
	hr := NewVerifyingReader(r, "", opts.Size, s.maxSize)
	hr.digester = alg.Digester()
	if st, ok := s.raw.(Stager); ok {
		return s.ingestStagedAside(ctx, st, hr, opts)
	}
	staging := stagingPrefix + uuid.NewString()
	cleanup := func() { _ = s.backend.Delete(context.WithoutCancel(ctx), staging) }
	if err := s.backend.Put(ctx, staging, hr, opts.Size); err != nil {
		cleanup()
		return Blob{}, s.classify(hr, "", err)
	}
	if !hr.Verified() {
		cleanup()
		return Blob{}, fmt.Errorf("%w: backend did not read the whole body", ErrSizeMismatch)
	}
	d := hr.Digest()
	key := BlobKey(d)
	replace, err := opts.replace(d)
	if err != nil {
		cleanup()
		return Blob{}, err
	}
	if _, err := s.backend.Stat(ctx, key); err == nil && !replace {
		cleanup()
		return Blob{Digest: d, Size: hr.Count(), Created: false}, nil
	}
	if err := s.backend.Move(ctx, staging, key); err != nil {
		cleanup()
		return Blob{}, fmt.Errorf("commit %s: %w", d, err)
	}
	return Blob{Digest: d, Size: hr.Count(), Created: true}, nil
}

// ingestStagedAside is ingestStaged on a backend that can write a body
// before it knows its key (Stager): one write, then a commit under the
// digest's key, or nothing when the blob is already stored.
func (s *Store) ingestStagedAside(ctx context.Context, st Stager, hr *VerifyingReader, opts IngestOptions) (Blob, error) {
	obs := s.backend.(*observedBackend)
	staged, err := obs.stage(ctx, st, hr, opts.Size)
	if err != nil {
		return Blob{}, s.classify(hr, "", err)
	}
	discard := func() { _ = staged.Discard() }
	if !hr.Verified() {
		discard()
		return Blob{}, fmt.Errorf("%w: backend did not read the whole body", ErrSizeMismatch)
	}
	d := hr.Digest()
	key := BlobKey(d)
	replace, err := opts.replace(d)
	if err != nil {
		discard()
		return Blob{}, err
	}
	if _, err := s.backend.Stat(ctx, key); err == nil && !replace {
		discard()
		return Blob{Digest: d, Size: hr.Count(), Created: false}, nil
	}
	if err := obs.commit(ctx, staged, key); err != nil {
		return Blob{}, fmt.Errorf("commit %s: %w", d, err)
	}
	return Blob{Digest: d, Size: hr.Count(), Created: true}, nil
}

// classify prefers the verifying reader's own error (digest or size
// mismatch) over whatever the backend wrapped it in.
func (s *Store) classify(vr *VerifyingReader, d digest.Digest, err error) error {
	if verr := vr.Err(); verr != nil {
		return verr
	}
	if d != "" {
		return fmt.Errorf("store %s: %w", d, err)
	}
	return fmt.Errorf("store: %w", err)
}

// Stat returns the size of a stored blob.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if err := ValidateDigest(d); err != nil {
		return 0, err
	}
	info, err := s.backend.Stat(ctx, BlobKey(d))
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return info.Size, nil
}

// Exists reports whether the blob is stored.
func (s *Store) Exists(ctx context.Context, d digest.Digest) (bool, error) {
	_, err := s.Stat(ctx, d)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Open reads length bytes of a blob from offset (length < 0: to the end).
func (s *Store) Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("%w: negative offset", ErrInvalidRange)
	}
	rc, err := s.backend.Get(ctx, BlobKey(d), offset, length)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return rc, nil
}

// Delete removes a blob. Callers are responsible for checking that nothing
// refers to it any more.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := ValidateDigest(d); err != nil {
		return err
	}
	return s.backend.Delete(ctx, BlobKey(d))
}

// CleanStaging removes staging objects and backend partial writes older
// than maxAge: what a crash (kill -9) in the middle of an upload leaves.
func (s *Store) CleanStaging(ctx context.Context, maxAge time.Duration) (int, error) {
	cutoff := time.Now().Add(-maxAge)
	var stale []string
	err := s.backend.List(ctx, stagingPrefix, func(info Info) error {
		if _, chunk := chunkUpload(info.Key); chunk {
			// Chunks of an upload in progress may be much older than a
			// staging object should ever be: CleanUploads dates them by
			// the upload's last chunk.
			return nil
		}
		if !info.ModTime.After(cutoff) {
			stale = append(stale, info.Key)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list staging: %w", err)
	}
	removed := 0
	for _, key := range stale {
		if err := s.backend.Delete(ctx, key); err != nil {
			return removed, fmt.Errorf("delete %s: %w", key, err)
		}
		removed++
	}
	if sw, ok := s.raw.(Sweeper); ok {
		n, err := sw.Sweep(ctx, cutoff)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	if removed > 0 {
		s.log.Info("cleaned stale staging data", "removed", removed, "olderThan", maxAge)
	}
	return removed, nil
}

// StagingKey reports whether key is a staging key (used by tests and sweeps).
func StagingKey(key string) bool { return strings.HasPrefix(key, stagingPrefix) }

// IsBlobKey reports whether key is a blob key.
func IsBlobKey(key string) bool { return strings.HasPrefix(path.Clean(key), blobsPrefix) }
