package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// What the store offers for checking stored bytes after they were
// written (releases keeps the record of what was verified, and decides
// what to do about a blob that fails): a whole-blob verification, and
// listings of blobs and staging objects that stream, so that a check or a
// collection of a store with millions of blobs holds one at a time.

// StatBlob returns what the backend says of blob d, fingerprint included.
func (s *Store) StatBlob(ctx context.Context, d digest.Digest) (Info, error) {
	if err := ValidateDigest(d); err != nil {
		return Info{}, err
	}
	info, err := s.backend.Stat(ctx, BlobKey(d))
	if err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return info, nil
}

// Verify reads all of blob d and checks that it hashes to d and, when size
// is not negative, that it is size bytes long. It returns the object as
// Stat saw it before the read, so that the caller can tell later whether
// what it verified is still what is stored (Info.Fingerprint). A blob that
// fails is a *CorruptError (ErrCorrupt); a missing one ErrNotFound; anything else is a
// failure to read it, which says nothing about its bytes.
func (s *Store) Verify(ctx context.Context, d digest.Digest, size int64) (Info, error) {
	info, err := s.StatBlob(ctx, d)
	if err != nil {
		return Info{}, err
	}
	if size >= 0 && info.Size != size {
		return info, corrupt(d, fmt.Sprintf("%d bytes stored, %d expected", info.Size, size))
	}
	rc, err := s.backend.Get(ctx, BlobKey(d), 0, -1)
	if err != nil {
		return info, fmt.Errorf("blob %s: %w", d, err)
	}
	defer rc.Close()
	vr := NewVerifyingReader(rc, d, info.Size, -1)
	if _, err := io.Copy(io.Discard, vr); err != nil {
		if errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrSizeMismatch) {
			return info, corrupt(d, err.Error())
		}
		return info, fmt.Errorf("blob %s: %w", d, err)
	}
	return info, nil
}

// StoredBlob is one object of the blob area of the backend.
type StoredBlob struct {
	Info
	// Digest is the digest the key names; empty when the key is not one
	// the store would write (a stray object under blobs/).
	Digest digest.Digest
}

// ListBlobs calls fn for every object under the blob area, in no
// particular order, as the backend lists them (one at a time: memory does
// not grow with the number of blobs). fn's error stops the listing and is
// returned.
func (s *Store) ListBlobs(ctx context.Context, fn func(StoredBlob) error) error {
	return s.backend.List(ctx, blobsPrefix, func(info Info) error {
		return fn(StoredBlob{Info: info, Digest: digestOfKey(info.Key)})
	})
}

// digestOfKey inverts BlobKey; it returns "" for any other key.
func digestOfKey(key string) digest.Digest {
	rest, ok := strings.CutPrefix(key, blobsPrefix)
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || len(parts[1]) != 2 || !strings.HasPrefix(parts[2], parts[1]) {
		return ""
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
	if ValidateDigest(d) != nil || BlobKey(d) != key {
		return ""
	}
	return d
}

// StagingObject is one object of the staging area: the body of an upload
// being written, or a chunk of a chunked upload.
type StagingObject struct {
	Info
	// UploadID is the chunked upload the object is a chunk of, or "" for
	// a staging body.
	UploadID string
}

// ListStaging calls fn for every object of the staging area, one at a
// time, in the backend's order (chunks of one upload come together on
// both backends, which list keys in lexical order). fn's error stops the
// listing and is returned.
func (s *Store) ListStaging(ctx context.Context, fn func(StagingObject) error) error {
	return s.backend.List(ctx, stagingPrefix, func(info Info) error {
		id, _ := chunkUpload(info.Key)
		return fn(StagingObject{Info: info, UploadID: id})
	})
}

// DeleteStaging removes one object of the staging area.
func (s *Store) DeleteStaging(ctx context.Context, key string) error {
	if !StagingKey(key) || strings.Contains(key, "..") {
		return fmt.Errorf("%w: %q is not a staging key", ErrNotFound, key)
	}
	if err := s.backend.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// SweepPartials removes the backend's own partial writes (temporary
// files, incomplete multipart uploads) started before the given time, on
// backends that keep any (Sweeper).
func (s *Store) SweepPartials(ctx context.Context, startedBefore time.Time) (int, error) {
	sw, ok := s.raw.(Sweeper)
	if !ok {
		return 0, nil
	}
	return sw.Sweep(ctx, startedBefore)
}
