package storetest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
)

// runUploads checks chunked uploads (store.PutChunk and friends) over a
// backend.
func runUploads(t *testing.T, fresh func(*testing.T) store.Backend) {
	t.Run("ChunksCommit", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		data := BodyBytes(20, 3*70_000+11)
		parts := [][]byte{data[:70_000], data[70_000:140_000], data[140_000:]}
		var at store.ChunkPos
		for i, p := range parts {
			size := int64(len(p))
			if i == 1 {
				size = -1 // a streamed PATCH without Content-Length
			}
			n, err := s.PutChunk(ctx, "up1", at, bytes.NewReader(p), size, -1)
			if err != nil || n != int64(len(p)) {
				t.Fatalf("put chunk %d = %d, %v; want %d", i, n, err, len(p))
			}
			if i < 2 {
				at = store.ChunkPos{Offset: at.Offset + n, Chunks: at.Chunks + 1}
			}
		}
		// A chunk taken back (its request could not be recorded) is sent
		// again, and replaces the one before it.
		if err := s.UndoChunk(ctx, "up1", at); err != nil {
			t.Fatalf("undo chunk 2: %v", err)
		}
		if _, err := s.PutChunk(ctx, "up1", at, bytes.NewReader(parts[2]), int64(len(parts[2])), -1); err != nil {
			t.Fatalf("put chunk 2 again: %v", err)
		}
		at = store.ChunkPos{Offset: int64(len(data)), Chunks: 3}
		rc, err := s.OpenChunks(ctx, "up1", at)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("chunks read back: %d bytes, %v; want the %d bytes written", len(got), err, len(data))
		}
		d := digest.SHA512.FromBytes(data)
		blob, err := s.CommitChunks(ctx, "up1", at, store.IngestOptions{Digest: d, Size: int64(len(data))})
		if err != nil || blob.Digest != d || !blob.Created {
			t.Fatalf("commit = %+v, %v", blob, err)
		}
		assertBlob(t, ctx, s, d, int64(len(data)))
		if err := s.DeleteChunks(ctx, "up1"); err != nil {
			t.Fatal(err)
		}
		if keys := listKeys(t, ctx, b, "uploads/"); len(keys) > 0 {
			t.Errorf("chunks left after DeleteChunks: %v", keys)
		}
	})

	t.Run("ChunksAppended", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		if !s.AppendsChunks() {
			t.Skip("the backend stages each chunk apart")
		}
		data := BodyBytes(23, 50_000)
		first := store.ChunkPos{}
		if _, err := s.PutChunk(ctx, "up5", first, bytes.NewReader(data[:20_000]), 20_000, -1); err != nil {
			t.Fatal(err)
		}
		// A second request from the same position (a client racing
		// itself) finds the upload taken, and changes nothing.
		if _, err := s.PutChunk(ctx, "up5", first, strings.NewReader("other bytes"), 11, -1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a second chunk from the start: %v, want ErrNotFound", err)
		}
		at := store.ChunkPos{Offset: 20_000, Chunks: 1}
		if _, err := s.PutChunk(ctx, "up5", at, strings.NewReader("other bytes"), 11, -1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutChunk(ctx, "up5", at, strings.NewReader("other bytes"), 11, -1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a second chunk from 20000: %v, want ErrNotFound", err)
		}
		if err := s.UndoChunk(ctx, "up5", at); err != nil {
			t.Fatal(err)
		}
		// A body that fails leaves the upload where it stood.
		if _, err := s.PutChunk(ctx, "up5", at, FaultyReader(bytes.NewReader(data[20_000:]), 10_000, false), 30_000, -1); !errors.Is(err, ErrReader) {
			t.Errorf("a failing body: %v, want ErrReader", err)
		}
		if n, err := s.PutChunk(ctx, "up5", at, bytes.NewReader(data[20_000:]), -1, -1); err != nil || n != 30_000 {
			t.Fatalf("the chunk sent again = %d, %v", n, err)
		}
		at = store.ChunkPos{Offset: 50_000, Chunks: 2}
		rc, err := s.OpenChunks(ctx, "up5", at)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("upload read back: %d bytes, %v; want the %d bytes sent", len(got), err, len(data))
		}
		// Committing from a position the upload has left finds nothing.
		stale := digest.FromBytes(data[:20_000])
		if _, err := s.CommitStaged(ctx, "up5", store.ChunkPos{Offset: 20_000, Chunks: 1}, stale); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("commit from a stale position: %v, want ErrNotFound", err)
		}
		// The staged bytes past the position committed (left by a request
		// that was not recorded) are cut off.
		d := digest.FromBytes(data[:40_000])
		blob, err := s.CommitStaged(ctx, "up5", store.ChunkPos{Offset: 40_000, Chunks: 2}, d)
		if err != nil || blob.Digest != d || blob.Size != 40_000 {
			t.Fatalf("commit = %+v, %v", blob, err)
		}
		assertBlob(t, ctx, s, d, 40_000)
		if ok, err := s.Exists(ctx, stale); ok || err != nil {
			t.Errorf("blob of the stale commit exists: %v, %v", ok, err)
		}
		if keys := listKeys(t, ctx, b, "uploads/"); len(keys) > 0 {
			t.Errorf("staging left after the commit: %v", keys)
		}
	})

	t.Run("ChunksWrongDigest", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		data := BodyBytes(21, 5000)
		if _, err := s.PutChunk(ctx, "up2", store.ChunkPos{}, bytes.NewReader(data), int64(len(data)), -1); err != nil {
			t.Fatal(err)
		}
		wrong := digest.FromString("something else")
		if _, err := s.CommitChunks(ctx, "up2", store.ChunkPos{Offset: int64(len(data)), Chunks: 1}, store.IngestOptions{Digest: wrong, Size: int64(len(data))}); !errors.Is(err, store.ErrDigestMismatch) {
			t.Errorf("commit with the wrong digest: %v, want ErrDigestMismatch", err)
		}
		if ok, err := s.Exists(ctx, wrong); ok || err != nil {
			t.Errorf("blob under the wrong digest exists: %v, %v", ok, err)
		}
		if err := s.DeleteChunks(ctx, "up2"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ChunkRefused", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		for _, tc := range []struct {
			name        string
			id          string
			body        io.Reader
			size, limit int64
			want        error
		}{
			{"short body", "up3", strings.NewReader("abc"), 4, -1, store.ErrSizeMismatch},
			{"long body", "up3", strings.NewReader("abcde"), 4, -1, store.ErrSizeMismatch},
			{"declared over the limit", "up3", strings.NewReader("abcde"), 5, 4, store.ErrTooLarge},
			{"streamed over the limit", "up3", strings.NewReader("abcde"), -1, 4, store.ErrTooLarge},
			{"reader fails", "up3", FaultyReader(Body(22, 3000), 1500, false), 3000, -1, ErrReader},
			{"bad id", "../up", strings.NewReader("abc"), 3, -1, store.ErrInvalidUploadID},
			{"id with a dot", "up.3", strings.NewReader("abc"), 3, -1, store.ErrInvalidUploadID},
		} {
			if _, err := s.PutChunk(ctx, tc.id, store.ChunkPos{}, tc.body, tc.size, tc.limit); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if keys := listKeys(t, ctx, b, ""); len(keys) > 0 {
			t.Errorf("refused chunks left keys: %v", keys)
		}
	})

	t.Run("CleanUploads", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		for i := range 2 {
			if _, err := s.PutChunk(ctx, "up4", store.ChunkPos{Offset: int64(5 * i), Chunks: i}, strings.NewReader("chunk"), 5, -1); err != nil {
				t.Fatal(err)
			}
		}
		put(t, ctx, b, "uploads/left-by-a-crash", []byte("partial"))
		// Staging sweeps leave chunks alone, however old: an upload may
		// pause longer than a staging object may live.
		if n, err := s.CleanStaging(ctx, -time.Hour); err != nil || n != 1 {
			t.Errorf("clean staging = %d, %v; want 1 (the staging key only)", n, err)
		}
		if n, err := s.CleanUploads(ctx, time.Hour); err != nil || n != 0 {
			t.Errorf("clean fresh uploads = %d, %v; want 0", n, err)
		}
		wantKeys := 2 // the two chunks
		if s.AppendsChunks() {
			wantKeys = 1 // the upload's one object
		}
		if keys := listKeys(t, ctx, b, "uploads/"); len(keys) != wantKeys {
			t.Errorf("keys after cleaning nothing = %v, want %d", keys, wantKeys)
		}
		if n, err := s.CleanUploads(ctx, -time.Hour); err != nil || n != 1 {
			t.Errorf("clean uploads = %d, %v; want 1", n, err)
		}
		assertEmpty(t, ctx, b)
	})
}
