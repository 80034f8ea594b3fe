package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/dmlproject/dml/store/s3/s3test"
)

// TestCopyBlobs copies a directory's blobs into another directory and
// into a bucket on the real S3 server: every good blob arrives and
// verifies, a blob whose stored bytes are corrupt is reported and not
// copied, a stray object is reported and left, a copy of the wrong size
// in the destination is replaced, and a second run copies nothing.
func TestCopyBlobs(t *testing.T) {
	for _, dest := range []struct {
		name string
		open func(t *testing.T) store.Backend
	}{
		{"fs", func(t *testing.T) store.Backend { return openFS(t) }},
		{"s3", func(t *testing.T) store.Backend { return s3test.NewBackend(t, nil) }},
	} {
		t.Run(dest.name, func(t *testing.T) {
			ctx := context.Background()
			srcBackend := openFS(t)
			src, dst := store.New(srcBackend), store.New(dest.open(t))

			var good []digest.Digest
			for i := range 5 {
				body := bytes.Repeat([]byte(fmt.Sprintf("blob %d ", i)), 1000*(i+1))
				b, err := src.Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Size: int64(len(body))})
				if err != nil {
					t.Fatal(err)
				}
				good = append(good, b.Digest)
			}
			// Stored bytes that no longer hash to their digest, and an
			// object under blobs/ that names no digest.
			corrupt := digest.FromString("the bytes this blob should have")
			put(t, srcBackend, store.BlobKey(corrupt), "other bytes")
			put(t, srcBackend, "blobs/sha256/zz/not-a-digest", "junk")
			// The destination holds a truncated copy of one blob.
			put(t, dst.Backend(), store.BlobKey(good[0]), "trunc")

			var events []store.CopyEvent
			sum, err := store.CopyBlobs(ctx, src, dst, func(ev store.CopyEvent) { events = append(events, ev) })
			if err != nil {
				t.Fatal(err)
			}
			want := store.CopySummary{Blobs: 6, Copied: 5, Failed: 1, Stray: 1}
			want.CopiedBytes = sum.CopiedBytes // checked below, blob by blob
			if sum != want {
				t.Fatalf("first copy: %+v; want %+v", sum, want)
			}
			var copiedBytes int64
			for _, d := range good {
				size, err := src.Stat(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				copiedBytes += size
				if _, err := dst.Verify(ctx, d, size); err != nil {
					t.Errorf("blob %s in the destination: %v", d, err)
				}
			}
			if sum.CopiedBytes != copiedBytes {
				t.Errorf("copied bytes %d; want %d", sum.CopiedBytes, copiedBytes)
			}
			if ok, err := dst.Exists(ctx, corrupt); err != nil || ok {
				t.Errorf("the corrupt blob is in the destination (%v, %v); want it left out", ok, err)
			}
			outcomes := map[string]int{}
			for _, ev := range events {
				outcomes[ev.Outcome]++
				if ev.Outcome == store.CopyFailed && (ev.Digest != corrupt || !errors.Is(ev.Err, store.ErrDigestMismatch)) {
					t.Errorf("failure reported for %s: %v; want %s, a digest mismatch", ev.Digest, ev.Err, corrupt)
				}
			}
			if outcomes[store.CopyCopied] != 5 || outcomes[store.CopyFailed] != 1 || outcomes[store.CopyStray] != 1 {
				t.Errorf("events by outcome: %v", outcomes)
			}

			again, err := store.CopyBlobs(ctx, src, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := (store.CopySummary{Blobs: 6, Skipped: 5, Failed: 1, Stray: 1}); again != want {
				t.Errorf("second copy: %+v; want %+v (nothing written again)", again, want)
			}
		})
	}
}

func openFS(t *testing.T) *fs.Backend {
	t.Helper()
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// put writes body under key behind the store's back.
func put(t *testing.T, b store.Backend, key, body string) {
	t.Helper()
	var r io.Reader = bytes.NewReader([]byte(body))
	if err := b.Put(context.Background(), key, r, int64(len(body))); err != nil {
		t.Fatal(err)
	}
}
