package registry

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/store"
	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
)

// Chunked uploads (POST, PATCH…, PUT ?digest=). Each PATCH body is streamed
// into the blob store (store.PutChunk) while SHA-256 runs over it; the
// hash state and the offset are then saved with the session. So no
// request buffers more than the backend's own write buffer, an upload
// survives a restart, and at completion a SHA-256 digest the client names
// is checked from the saved state without re-reading anything: a wrong
// one is refused at once, and a blob the store already holds is linked
// without copying. A SHA-512 digest (rare: OCI clients push SHA-256) is
// checked by reading the staged bytes once at completion, rather than
// every chunk of every upload paying a second hash for it. Sessions saved
// by a server that kept a SHA-512 state too (before) keep it up to date. On a backend that appends (fs) the chunks extend one staged
// object, which then becomes the blob by a rename: each byte is written
// once. Elsewhere (S3) the chunks are streamed through store.Ingest with
// the expected digest, verified a second time while the blob is written.

// ChunkRange is a Content-Range: the first and last byte of a chunk.
type ChunkRange struct{ Start, End int64 }

// StartUpload opens an upload session in repo.
func (s *Service) StartUpload(ctx context.Context, p access.Principal, repo string) (UploadSession, error) {
	if err := canPush(p); err != nil {
		return UploadSession{}, err
	}
	if err := names.ValidateName(repo); err != nil {
		return UploadSession{}, err
	}
	now := s.now()
	u := UploadSession{ID: uuid.NewString(), Repository: repo, Owner: p.Name, StartedAt: now, UpdatedAt: now}
	var err error
	if u.SHA256State, u.SHA512State, err = marshalHashes(sha256.New(), nil); err != nil {
		return UploadSession{}, err
	}
	if err := s.uploads.CreateUpload(ctx, u); err != nil {
		return UploadSession{}, err
	}
	return u, nil
}

// UploadStatus returns an upload session of p in repo.
func (s *Service) UploadStatus(ctx context.Context, p access.Principal, repo, id string) (UploadSession, error) {
	return s.loadUpload(ctx, p, repo, id)
}

// loadUpload returns the session if it belongs to p and repo; anything
// else is ErrUploadUnknown, so sessions of others are not even confirmed.
func (s *Service) loadUpload(ctx context.Context, p access.Principal, repo, id string) (UploadSession, error) {
	if err := canPush(p); err != nil {
		return UploadSession{}, err
	}
	u, err := s.uploads.Upload(ctx, id)
	if errors.Is(err, errdef.ErrNotFound) || (err == nil && (u.Repository != repo || u.Owner != p.Name)) {
		return UploadSession{}, fmt.Errorf("%w: %s in %s", ErrUploadUnknown, id, repo)
	}
	return u, err
}

// AppendUpload adds a chunk to an upload. rng, when the client sent a
// Content-Range, must start where the upload ends (ErrChunkOutOfOrder
// otherwise, with the session returned so the caller can say where it
// stands); size is the body length or -1. The session is returned as it
// stands after the call.
func (s *Service) AppendUpload(ctx context.Context, p access.Principal, repo, id string, body io.Reader, rng *ChunkRange, size int64) (UploadSession, error) {
	defer s.uploading.Lock(id)()
	u, err := s.loadUpload(ctx, p, repo, id)
	if err != nil {
		return UploadSession{}, err
	}
	if size, err = checkChunkRange(u, rng, size); err != nil {
		return u, err
	}
	err = s.appendChunk(ctx, &u, body, size)
	return u, err
}

// checkChunkRange checks a chunk's Content-Range against the session and
// the body length and returns the chunk's length (or -1).
func checkChunkRange(u UploadSession, rng *ChunkRange, size int64) (int64, error) {
	if rng == nil {
		return size, nil
	}
	if rng.Start != u.Offset {
		return 0, fmt.Errorf("%w: the upload holds %d bytes, so the next chunk starts at %d, not %d", ErrChunkOutOfOrder, u.Offset, u.Offset, rng.Start)
	}
	n := rng.End - rng.Start + 1
	if n < 0 || (size >= 0 && size != n) {
		return 0, fmt.Errorf("%w: Content-Range %d-%d does not match a body of %d bytes", store.ErrSizeMismatch, rng.Start, rng.End, size)
	}
	return n, nil
}

// appendChunk stores body as the next chunk and saves the session.
func (s *Service) appendChunk(ctx context.Context, u *UploadSession, body io.Reader, size int64) error {
	if size == 0 {
		return nil
	}
	body, err := s.quotas.CheckUpload(ctx, u.Repository, u.Offset, size, body)
	if err != nil {
		return err
	}
	h256, h512, err := restoreHashes(*u)
	if err != nil {
		return err
	}
	limit := int64(-1)
	if max := s.blobs.Store().MaxSize(); max >= 0 {
		limit = max - u.Offset
	}
	blobStore := s.blobs.Store()
	at := chunkPos(*u)
	var hashes io.Writer = h256
	if h512 != nil {
		pair := newHashPair(h256, h512)
		defer pair.Close()
		hashes = pair
	}
	n, err := blobStore.PutChunk(ctx, u.ID, at, io.TeeReader(body, hashes), size, limit)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The staged bytes are not where the session says: another
		// request of this upload took them (a client racing itself).
		return fmt.Errorf("%w: upload %s is being written by another request", errdef.ErrConflict, u.ID)
	case errors.Is(err, store.ErrInvalidRange):
		// The staged bytes are fewer than the session counts (lost in
		// a crash of the machine): the upload cannot go on.
		s.discardUpload(ctx, *u)
		return fmt.Errorf("%w: %s: %w", ErrUploadInvalid, u.ID, err)
	}
	if err != nil {
		return err
	}
	// undo takes the chunk back when it cannot be recorded, so that the
	// upload is again what the session says.
	undo := func() {
		if err := blobStore.UndoChunk(context.WithoutCancel(ctx), u.ID, at); err != nil {
			s.log.Warn("taking back an unrecorded chunk failed", "upload", u.ID, "err", err)
		}
	}
	if n == 0 {
		undo() // an empty streamed body
		return nil
	}
	next := *u
	next.Offset += n
	next.Chunks++
	next.UpdatedAt = s.now()
	if next.SHA256State, next.SHA512State, err = marshalHashes(h256, h512); err != nil {
		return err
	}
	if err := UpdateUpload(ctx, s.uploads, next, u.Offset, u.Chunks); err != nil {
		undo()
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("%w: %s was cancelled or expired", ErrUploadUnknown, u.ID)
		}
		return err
	}
	*u = next
	return nil
}

// CompleteUpload ends an upload with its last chunk (body, possibly empty)
// and the digest the whole blob must have, stores the blob and links it
// into repo. A digest that does not match ends the upload.
func (s *Service) CompleteUpload(ctx context.Context, p access.Principal, repo, id string, d digest.Digest, body io.Reader, rng *ChunkRange, size int64) (BlobLink, error) {
	defer s.uploading.Lock(id)()
	u, err := s.loadUpload(ctx, p, repo, id)
	if err != nil {
		return BlobLink{}, err
	}
	if err := store.ValidateDigest(d); err != nil {
		return BlobLink{}, err
	}
	if size, err = checkChunkRange(u, rng, size); err != nil {
		return BlobLink{}, err
	}
	if size != 0 && u.Chunks > 0 && s.blobs.Store().AppendsChunks() {
		// The last chunk extends the staged bytes like any other; then
		// they become the blob.
		if err := s.appendChunk(ctx, &u, body, size); err != nil {
			return BlobLink{}, err
		}
		size = 0
	}
	total := u.Offset
	var release func()
	if size == 0 {
		if release, err = s.commitSaved(ctx, p, u, d); err != nil {
			return BlobLink{}, err
		}
	} else {
		body, err := s.quotas.CheckUpload(ctx, repo, u.Offset, size, body)
		if err != nil {
			return BlobLink{}, err
		}
		// The last chunk streams straight into the blob behind the saved
		// ones: storing it as a chunk first would write it twice.
		var r io.Reader = body
		if u.Chunks > 0 {
			chunks, err := s.blobs.Store().OpenChunks(ctx, u.ID, chunkPos(u))
			if err != nil {
				return BlobLink{}, err
			}
			defer chunks.Close()
			r = io.MultiReader(chunks, body)
		}
		expected := int64(-1)
		if size > 0 {
			expected = u.Offset + size
		}
		blob, hold, err := s.blobs.Ingest(ctx, p.Actor(), r, store.IngestOptions{Digest: d, Size: expected})
		if err != nil {
			if errors.Is(err, store.ErrDigestMismatch) {
				s.discardUpload(ctx, u)
			}
			return BlobLink{}, err
		}
		release, total = hold, blob.Size
	}
	defer release()
	l, err := s.linkBlob(ctx, p, repo, d, total, "")
	if err != nil {
		return BlobLink{}, err
	}
	s.discardUpload(ctx, u)
	return l, nil
}

// commitSaved completes an upload whose bytes are all in its chunks, and
// holds the blob against gc until release is called (see holdBlob).
func (s *Service) commitSaved(ctx context.Context, p access.Principal, u UploadSession, d digest.Digest) (release func(), err error) {
	h256, h512, err := restoreHashes(u)
	if err != nil {
		return nil, err
	}
	h := map[digest.Algorithm]hash.Hash{digest.SHA256: h256, digest.SHA512: h512}[d.Algorithm()]
	if h == nil {
		// Not kept while the chunks came: hash the staged bytes.
		if h, err = s.hashStaged(ctx, u, d.Algorithm()); err != nil {
			return nil, err
		}
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		s.discardUpload(ctx, u)
		return nil, fmt.Errorf("%w: the %d bytes uploaded hash to %s, not %s", store.ErrDigestMismatch, u.Offset, got, d)
	}
	replace, err := s.blobs.MustReplace(ctx, d)
	if err != nil {
		return nil, err
	}
	if ok, err := s.blobs.Store().Exists(ctx, d); err != nil {
		return nil, err
	} else if ok && !replace {
		// Stored already, and sound: the hash state proves the client
		// sent these bytes.
		return s.blobs.Hold(ctx, p.Actor(), d, false)
	}
	if err := s.commitChunks(ctx, u, d); err != nil {
		if errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeMismatch) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidRange) {
			// The chunks are not what the session says (lost, or
			// overwritten by a misbehaving client): the upload is unusable.
			s.discardUpload(ctx, u)
			return nil, fmt.Errorf("%w: %s: %w", ErrUploadInvalid, u.ID, err)
		}
		return nil, err
	}
	return s.blobs.Hold(ctx, p.Actor(), d, true)
}

// commitChunks stores the bytes of u as blob d (replacing a stored copy):
// renamed into place on a backend that appends (the saved hash state
// proved d), read back and verified otherwise.
func (s *Service) commitChunks(ctx context.Context, u UploadSession, d digest.Digest) error {
	blobStore := s.blobs.Store()
	if blobStore.AppendsChunks() {
		_, err := blobStore.CommitStaged(ctx, u.ID, chunkPos(u), d)
		return err
	}
	always := func(digest.Digest) (bool, error) { return true, nil }
	_, err := blobStore.CommitChunks(ctx, u.ID, chunkPos(u), store.IngestOptions{Digest: d, Size: u.Offset, Replace: always})
	return err
}

func chunkPos(u UploadSession) store.ChunkPos {
	return store.ChunkPos{Offset: u.Offset, Chunks: u.Chunks}
}

// CancelUpload ends an upload and removes what it stored.
func (s *Service) CancelUpload(ctx context.Context, p access.Principal, repo, id string) error {
	defer s.uploading.Lock(id)()
	u, err := s.loadUpload(ctx, p, repo, id)
	if err != nil {
		return err
	}
	s.discardUpload(ctx, u)
	return nil
}

// discardUpload removes a session, then its chunks: if the process dies
// in between, the chunks are orphans that store.CleanUploads removes,
// never chunks that a live session counts on.
func (s *Service) discardUpload(ctx context.Context, u UploadSession) {
	ctx = context.WithoutCancel(ctx)
	if err := s.uploads.DeleteUpload(ctx, u.ID); err != nil {
		s.log.Warn("removing upload session failed", "upload", u.ID, "err", err)
		return
	}
	if err := s.blobs.Store().DeleteChunks(ctx, u.ID); err != nil {
		s.log.Warn("removing upload chunks failed; the upload sweep will retry", "upload", u.ID, "err", err)
	}
}

// SweepUploads removes upload sessions not updated for maxAge, with their
// chunks, and chunks whose session is gone. It returns how many uploads
// it removed.
func (s *Service) SweepUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	removed := 0
	cutoff := s.now().Add(-maxAge)
	for {
		stale, err := s.uploads.StaleUploads(ctx, cutoff, 100)
		if err != nil {
			return removed, err
		}
		for _, u := range stale {
			if s.expireUpload(ctx, u.ID, cutoff) {
				removed++
			}
		}
		if len(stale) < 100 {
			break
		}
	}
	n, err := s.blobs.Store().CleanUploads(ctx, maxAge)
	removed += n
	if removed > 0 {
		s.log.Info("removed abandoned uploads", "count", removed, "olderThan", maxAge)
	}
	return removed, err
}

// expireUpload removes one stale session, unless a request revived it
// after it was listed.
func (s *Service) expireUpload(ctx context.Context, id string, cutoff time.Time) bool {
	defer s.uploading.Lock(id)()
	u, err := s.uploads.Upload(ctx, id)
	if err != nil || !u.UpdatedAt.Before(cutoff) {
		return false
	}
	s.discardUpload(ctx, u)
	return true
}

// hashPair writes to two hashes at once: the second runs on a goroutine
// of its own, so SHA-512 does not add its time to SHA-256's on the path
// of every chunk. Write returns once both have the bytes, so the caller
// may reuse them. Close ends the goroutine.
type hashPair struct {
	first  hash.Hash
	second chan []byte
	done   chan struct{}
}

func newHashPair(first, second hash.Hash) *hashPair {
	h := &hashPair{first: first, second: make(chan []byte), done: make(chan struct{})}
	go func() {
		for p := range h.second {
			second.Write(p)
			h.done <- struct{}{}
		}
	}()
	return h
}

func (h *hashPair) Write(p []byte) (int, error) {
	h.second <- p
	h.first.Write(p)
	<-h.done
	return len(p), nil
}

func (h *hashPair) Close() { close(h.second) }

// hashStaged hashes the bytes staged for u with algorithm a.
func (s *Service) hashStaged(ctx context.Context, u UploadSession, a digest.Algorithm) (hash.Hash, error) {
	chunks, err := s.blobs.Store().OpenChunks(ctx, u.ID, chunkPos(u))
	if err != nil {
		return nil, err
	}
	defer chunks.Close()
	h := a.Hash()
	if n, err := store.Copy(h, chunks, -1); err != nil {
		return nil, err
	} else if n != u.Offset {
		return nil, fmt.Errorf("%w: upload %s: %d bytes staged, %d recorded", ErrUploadInvalid, u.ID, n, u.Offset)
	}
	return h, nil
}

// marshalHashes saves the SHA-256 and the SHA-512 states of an upload; a
// nil hash (SHA-512, not kept) is saved as an empty state.
func marshalHashes(hs ...hash.Hash) (h256, h512 []byte, err error) {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		if h == nil {
			out[i] = []byte{}
			continue
		}
		m, ok := h.(encoding.BinaryMarshaler)
		if !ok {
			return nil, nil, fmt.Errorf("hash %T cannot save its state", h)
		}
		if out[i], err = m.MarshalBinary(); err != nil {
			return nil, nil, fmt.Errorf("saving hash state: %w", err)
		}
	}
	return out[0], out[1], nil
}

// restoreHashes restores an upload's hash states; the SHA-512 one is nil
// when the session keeps none (an empty state).
func restoreHashes(u UploadSession) (hash.Hash, hash.Hash, error) {
	h256 := sha256.New()
	var h512 hash.Hash
	states := []struct {
		h     hash.Hash
		state []byte
	}{{h256, u.SHA256State}}
	if len(u.SHA512State) > 0 {
		h512 = sha512.New()
		states = append(states, struct {
			h     hash.Hash
			state []byte
		}{h512, u.SHA512State})
	}
	for _, x := range states {
		um, ok := x.h.(encoding.BinaryUnmarshaler)
		if !ok {
			return nil, nil, fmt.Errorf("hash %T cannot restore its state", x.h)
		}
		if err := um.UnmarshalBinary(x.state); err != nil {
			return nil, nil, fmt.Errorf("%w: upload %s: corrupt hash state: %v", ErrUploadInvalid, u.ID, err)
		}
	}
	return h256, h512, nil
}

// Sessions is the registry's side of gc: its upload sessions
// (blobs.Uploads).
func (s *Service) Sessions() blobs.Uploads { return uploadSessions{s} }

type uploadSessions struct{ s *Service }

func (u uploadSessions) StaleUploads(ctx context.Context, before time.Time, limit int) ([]blobs.Upload, error) {
	stale, err := u.s.uploads.StaleUploads(ctx, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]blobs.Upload, len(stale))
	for i, x := range stale {
		out[i] = blobs.Upload{ID: x.ID, Repository: x.Repository, Offset: x.Offset, UpdatedAt: x.UpdatedAt}
	}
	return out, nil
}

func (u uploadSessions) ExpireUpload(ctx context.Context, id string, cutoff time.Time) bool {
	return u.s.expireUpload(ctx, id, cutoff)
}

func (u uploadSessions) UploadExists(ctx context.Context, id string) (bool, error) {
	_, err := u.s.uploads.Upload(ctx, id)
	if errors.Is(err, errdef.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
