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

// Chunked uploads. An upload that arrives in several requests keeps each
// request's body as its own staging object, uploads/<id>.<n>, so no request
// holds more than its own body in flight and nothing is appended in place
// (S3 cannot append). The keys are flat, not uploads/<id>/<n>, because the
// fs backend keeps empty directories (removing them would race with a
// concurrent Put): a directory per upload would never go away. Completing the upload streams the chunks, in order,
// through Ingest with the expected digest, so the blob is verified while
// it is written; then the chunks are deleted.
//
// The caller (the registry) keeps the upload's offset and chunk count; the
// store only names, writes, reads and removes chunks.

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

// PutChunk writes chunk n of upload id from r. size is the exact length
// when known, or -1; limit caps the chunk (-1: only the store's maximum
// blob size). It returns the number of bytes stored. A chunk written again
// replaces the previous one: a retried request overwrites what a failed
// one left.
func (s *Store) PutChunk(ctx context.Context, id string, n int, r io.Reader, size, limit int64) (int64, error) {
	if err := checkUploadID(id); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: negative chunk number %d", ErrInvalidRange, n)
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
	key := ChunkKey(id, n)
	if err := s.backend.Put(ctx, key, vr, size); err != nil {
		return 0, s.classify(vr, "", fmt.Errorf("chunk %d of upload %s: %w", n, id, err))
	}
	if !vr.Verified() {
		_ = s.backend.Delete(context.WithoutCancel(ctx), key)
		return 0, fmt.Errorf("%w: chunk %d of upload %s: backend did not read the whole body", ErrSizeMismatch, n, id)
	}
	return vr.Count(), nil
}

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

// OpenChunks reads chunks 0..count-1 of upload id as one stream. Each
// chunk is opened when the previous one ends, so one backend reader is
// open at a time.
func (s *Store) OpenChunks(ctx context.Context, id string, count int) (io.ReadCloser, error) {
	if err := checkUploadID(id); err != nil {
		return nil, err
	}
	return &chunkReader{ctx: ctx, backend: s.backend, id: id, count: count}, nil
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

// CommitChunks ingests chunks 0..count-1 of upload id as a blob, verified
// while it is written (see Ingest; opts.Digest must be set). The chunks
// are left in place; DeleteChunks removes them once the caller has
// recorded the blob.
func (s *Store) CommitChunks(ctx context.Context, id string, count int, opts IngestOptions) (Blob, error) {
	if opts.Digest == "" {
		return Blob{}, fmt.Errorf("%w: committing upload %s needs the digest", ErrInvalidDigest, id)
	}
	rc, err := s.OpenChunks(ctx, id, count)
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
// than maxAge: every chunk request writes a new object, so the newest one
// dates the upload's last activity. It is what remains of uploads whose
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
