package store

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Chunked uploads. The caller (the registry) keeps where an upload stands
// — its offset and chunk count, a ChunkPos — and the store names, writes,
// reads and removes what it holds, in one of two layouts:
//
//   - On a backend that appends (Appender: fs), the upload is one object
//     that each chunk extends: after n chunks it is uploads/<id>.<n>,
//     and the next chunk moves it to uploads/<id>.<n+1> as it appends.
//     The move is atomic, so of two requests racing from one position
//     only one gets the object; and because its name is the chunk count,
//     the object is always the bytes of the position the caller recorded.
//     Completing the upload renames it to its blob key (CommitStaged): no
//     byte is written twice, none read back. The caller must have hashed
//     the bytes as they arrived (the registry keeps the running hash).
//   - Elsewhere (S3 cannot append), each request's body is its own
//     object, uploads/<id>.<n> for chunk n, so no request holds more than
//     its own body in flight; completing the upload streams the chunks,
//     in order, through Ingest with the expected digest, so the blob is
//     verified while it is written (CommitChunks); then the chunks are
//     deleted.
//
// The keys are flat, not uploads/<id>/<n>, because the fs backend keeps
// empty directories (removing them would race with a concurrent Put): a
// directory per upload would never go away.

// ChunkPos is where a chunked upload stands: the bytes it holds and the
// number of chunks they came in.
type ChunkPos struct {
	Offset int64
	Chunks int
}

// uploadIDRE keeps upload IDs to one safe key segment.
var uploadIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// ErrInvalidUploadID refuses an upload ID that cannot name a key segment.
var ErrInvalidUploadID = errors.New("invalid upload id")

func checkUploadID(id string) error {
	if !uploadIDRE.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrInvalidUploadID, id)
	}
	return nil
}

// ChunkKey is the backend key of chunk n of upload id.
func ChunkKey(id string, n int) string {
	return chunkPrefix(id) + strconv.Itoa(n)
}

func chunkPrefix(id string) string { return stagingPrefix + id + "." }

// PutChunk stores the next chunk of upload id, which stands at at, from
// r. size is the exact length when known, or -1; limit caps the chunk (-1:
// only the store's maximum blob size). It returns the number of bytes
// stored. A chunk that the caller could not record must be taken back
// with UndoChunk before it is sent again.
//
// On a backend that appends, a request that lost a race for the same
// position, or an upload whose staged object is gone, is ErrNotFound.
func (s *Store) PutChunk(ctx context.Context, id string, at ChunkPos, r io.Reader, size, limit int64) (int64, error) {
	if err := checkUploadID(id); err != nil {
		return 0, err
	}
	if at.Chunks < 0 || at.Offset < 0 {
		return 0, fmt.Errorf("%w: negative upload position %+v", ErrInvalidRange, at)
	}
	if s.maxSize >= 0 && (limit < 0 || limit > s.maxSize) {
		limit = s.maxSize
	}
	if limit >= 0 && size > limit {
		return 0, fmt.Errorf("%w: chunk of %d bytes, at most %d more may be uploaded", ErrTooLarge, size, limit)
	}
	// The verifying reader checks the length (and the limit) and fails
	// instead of reaching EOF, so the backend aborts a short or overlong
	// chunk rather than storing it.
	vr := &VerifyingReader{r: r, digester: countOnly{}, size: size, max: limit}
	if a, ok := s.appender(); ok {
		n, err := a.Append(ctx, s.stagedKey(id, at), ChunkKey(id, at.Chunks+1), at.Offset, vr, size)
		if err != nil {
			return 0, s.classify(vr, "", fmt.Errorf("chunk %d of upload %s: %w", at.Chunks, id, err))
		}
		if !vr.Verified() {
			_ = s.UndoChunk(context.WithoutCancel(ctx), id, at)
			return 0, fmt.Errorf("%w: chunk %d of upload %s: backend did not read the whole body", ErrSizeMismatch, at.Chunks, id)
		}
		return n, nil
	}
	key := ChunkKey(id, at.Chunks)
	if err := s.backend.Put(ctx, key, vr, size); err != nil {
		return 0, s.classify(vr, "", fmt.Errorf("chunk %d of upload %s: %w", at.Chunks, id, err))
	}
	if !vr.Verified() {
		_ = s.backend.Delete(context.WithoutCancel(ctx), key)
		return 0, fmt.Errorf("%w: chunk %d of upload %s: backend did not read the whole body", ErrSizeMismatch, at.Chunks, id)
	}
	return vr.Count(), nil
}

// UndoChunk takes back the chunk PutChunk stored at at, which the caller
// could not record: the upload is again what it was at at. Where each
// chunk is its own object there is nothing to undo (the next chunk at at
// replaces it).
func (s *Store) UndoChunk(ctx context.Context, id string, at ChunkPos) error {
	if err := checkUploadID(id); err != nil {
		return err
	}
	a, ok := s.appender()
	if !ok {
		return nil
	}
	next := ChunkKey(id, at.Chunks+1)
	if at.Chunks == 0 {
		return s.backend.Delete(ctx, next)
	}
	if _, err := a.Append(ctx, next, ChunkKey(id, at.Chunks), at.Offset, eofReader{}, 0); err != nil {
		return fmt.Errorf("undo chunk %d of upload %s: %w", at.Chunks, id, err)
	}
	return nil
}

// AppendsChunks reports whether the backend stages a chunked upload as
// one object (Appender), which CommitStaged makes the blob.
func (s *Store) AppendsChunks() bool {
	_, ok := s.appender()
	return ok
}

// appender is the backend, timed, if it can append.
func (s *Store) appender() (Appender, bool) {
	if _, ok := s.raw.(Appender); !ok {
		return nil, false
	}
	return s.backend.(Appender), true
}

// stagedKey is the object an appended upload at at is staged in, or ""
// before its first chunk.
func (s *Store) stagedKey(id string, at ChunkPos) string {
	if at.Chunks == 0 {
		return ""
	}
	return ChunkKey(id, at.Chunks)
}

// CommitStaged makes the bytes upload id holds at at the blob d, without
// reading or writing them again: the staged object is renamed to d's key
// (replacing a stored copy). The caller must know that d is their digest:
// the registry hashed every byte as PutChunk stored it. Only on a backend
// that appends (AppendsChunks); elsewhere use CommitChunks, which reads
// the chunks back and verifies them. A staged object that is gone, or
// that a racing request took, is ErrNotFound.
func (s *Store) CommitStaged(ctx context.Context, id string, at ChunkPos, d digest.Digest) (Blob, error) {
	if err := checkUploadID(id); err != nil {
		return Blob{}, err
	}
	if err := ValidateDigest(d); err != nil {
		return Blob{}, err
	}
	a, ok := s.appender()
	if !ok {
		return Blob{}, fmt.Errorf("commit upload %s: the %s backend stages chunks apart: %w", id, s.Kind(), errors.ErrUnsupported)
	}
	if at.Chunks == 0 {
		return Blob{}, fmt.Errorf("commit upload %s: %w: nothing uploaded", id, ErrNotFound)
	}
	if s.maxSize >= 0 && at.Offset > s.maxSize {
		return Blob{}, fmt.Errorf("%w: %d bytes uploaded, the limit is %d", ErrTooLarge, at.Offset, s.maxSize)
	}
	// First take the object (so a racing request cannot extend it) and
	// cut it to the bytes the caller hashed; only then give it the blob's
	// name, which makes it visible.
	taken := ChunkPos{Offset: at.Offset, Chunks: at.Chunks + 1}
	if _, err := a.Append(ctx, ChunkKey(id, at.Chunks), ChunkKey(id, taken.Chunks), at.Offset, eofReader{}, 0); err != nil {
		return Blob{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	if err := s.backend.Move(ctx, ChunkKey(id, taken.Chunks), BlobKey(d)); err != nil {
		_ = s.UndoChunk(context.WithoutCancel(ctx), id, at)
		return Blob{}, fmt.Errorf("commit %s: %w", d, err)
	}
	return Blob{Digest: d, Size: at.Offset, Created: true}, nil
}

// eofReader is an empty body.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// countOnly is the digester of a VerifyingReader that only counts: a chunk
// has no digest of its own, and the registry hashes the upload as a whole.
type countOnly struct{}

func (countOnly) Hash() hash.Hash       { return discardHash{} }
func (countOnly) Digest() digest.Digest { return "" }

type discardHash struct{}

func (discardHash) Write(p []byte) (int, error) { return len(p), nil }
func (discardHash) Sum(b []byte) []byte         { return b }
func (discardHash) Reset()                      {}
func (discardHash) Size() int                   { return 0 }
func (discardHash) BlockSize() int              { return 1 }

// OpenChunks reads the bytes upload id holds at at as one stream. Where
// each chunk is its own object, each is opened when the previous one
// ends, so one backend reader is open at a time.
func (s *Store) OpenChunks(ctx context.Context, id string, at ChunkPos) (io.ReadCloser, error) {
	if err := checkUploadID(id); err != nil {
		return nil, err
	}
	if s.AppendsChunks() {
		if at.Chunks == 0 {
			return io.NopCloser(eofReader{}), nil
		}
		rc, err := s.backend.Get(ctx, ChunkKey(id, at.Chunks), 0, at.Offset)
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", id, err)
		}
		return rc, nil
	}
	return &chunkReader{ctx: ctx, backend: s.backend, id: id, count: at.Chunks}, nil
}

type chunkReader struct {
	ctx     context.Context
	backend Backend
	id      string
	count   int
	next    int
	cur     io.ReadCloser
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if c.next >= c.count {
				return 0, io.EOF
			}
			rc, err := c.backend.Get(c.ctx, ChunkKey(c.id, c.next), 0, -1)
			if err != nil {
				return 0, fmt.Errorf("chunk %d of upload %s: %w", c.next, c.id, err)
			}
			c.cur = rc
			c.next++
		}
		n, err := c.cur.Read(p)
		if errors.Is(err, io.EOF) {
			_ = c.cur.Close()
			c.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *chunkReader) Close() error {
	if c.cur == nil {
		return nil
	}
	err := c.cur.Close()
	c.cur = nil
	return err
}

// CommitChunks ingests the bytes upload id holds at at as a blob,
// verified while it is written (see Ingest; opts.Digest must be set). The
// chunks are left in place; DeleteChunks removes them once the caller has
// recorded the blob.
func (s *Store) CommitChunks(ctx context.Context, id string, at ChunkPos, opts IngestOptions) (Blob, error) {
	if opts.Digest == "" {
		return Blob{}, fmt.Errorf("%w: committing upload %s needs the digest", ErrInvalidDigest, id)
	}
	rc, err := s.OpenChunks(ctx, id, at)
	if err != nil {
		return Blob{}, err
	}
	defer rc.Close()
	return s.Ingest(ctx, rc, opts)
}

// DeleteChunks removes every chunk of upload id, including one a failed
// request may have left past the last recorded chunk.
func (s *Store) DeleteChunks(ctx context.Context, id string) error {
	if err := checkUploadID(id); err != nil {
		return err
	}
	var keys []string
	if err := s.backend.List(ctx, chunkPrefix(id), func(info Info) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		return fmt.Errorf("list chunks of upload %s: %w", id, err)
	}
	for _, key := range keys {
		if err := s.backend.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
	}
	return nil
}

// CleanUploads removes the chunks of uploads whose newest chunk is older
// than maxAge: every chunk request writes a new object, or extends the
// upload's one, so the newest one dates the upload's last activity. It is what remains of uploads whose
// session was lost (the registry sweeps the sessions it knows itself), and
// returns the number of uploads removed.
func (s *Store) CleanUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	cutoff := time.Now().Add(-maxAge)
	newest := map[string]time.Time{}
	err := s.backend.List(ctx, stagingPrefix, func(info Info) error {
		id, ok := chunkUpload(info.Key)
		if ok && info.ModTime.After(newest[id]) {
			newest[id] = info.ModTime
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list uploads: %w", err)
	}
	removed := 0
	for id, t := range newest {
		if t.After(cutoff) {
			continue
		}
		if err := s.DeleteChunks(ctx, id); err != nil {
			return removed, err
		}
		removed++
	}
	if removed > 0 {
		s.log.Info("cleaned abandoned chunked uploads", "removed", removed, "olderThan", maxAge)
	}
	return removed, nil
}

// chunkUpload returns the upload ID of a chunk key uploads/<id>.<n>.
// Staging keys (uploads/<uuid>) have no dot, and upload IDs none either.
func chunkUpload(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, stagingPrefix)
	if !ok {
		return "", false
	}
	id, n, ok := strings.Cut(rest, ".")
	if !ok || checkUploadID(id) != nil {
		return "", false
	}
	if _, err := strconv.Atoi(n); err != nil {
		return "", false
	}
	return id, true
}
