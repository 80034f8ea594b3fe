package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/dmlproject/dml/store/storetest"
	"github.com/opencontainers/go-digest"
)

// countingBackend is the fs backend counting the bytes it is given to
// store, by Put or by Append.
type countingBackend struct {
	*fs.Backend
	written atomic.Int64
}

func (c *countingBackend) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return c.Backend.Put(ctx, key, &countingReader{r: r, n: &c.written}, size)
}

func (c *countingBackend) Append(ctx context.Context, src, dst string, offset int64, r io.Reader, size int64) (int64, error) {
	return c.Backend.Append(ctx, src, dst, offset, &countingReader{r: r, n: &c.written}, size)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestChunkedUploadWritesOnce: the bytes of a chunked upload are given to
// the backend once — each PATCH appended where the blob is staged, and the
// staged bytes made the blob without being written again — whether the
// last chunk comes with the PUT or before it.
func TestChunkedUploadWritesOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lastBody bool
	}{
		{"empty PUT", false},
		{"last chunk in the PUT", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var counted *countingBackend
			env := domaintest.NewEnvOver(t, func(b *fs.Backend) store.Backend {
				counted = &countingBackend{Backend: b}
				return counted
			})
			ctx, reg := env.Ctx, env.DML.Registry
			pub := env.Principal("pipeline", nil, access.RolePublisher)
			const repo = "apps/chunked"
			data := storetest.BodyBytes(31, 3<<20+12345)
			d := digest.FromBytes(data)
			u, err := reg.StartUpload(ctx, pub, repo)
			if err != nil {
				t.Fatal(err)
			}
			parts := [][]byte{data[:1<<20], data[1<<20 : 2<<20], data[2<<20:]}
			patches := parts
			if tc.lastBody {
				patches = parts[:2]
			}
			for i, p := range patches {
				if u, err = reg.AppendUpload(ctx, pub, repo, u.ID, bytes.NewReader(p), nil, int64(len(p))); err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
			}
			var last []byte
			if tc.lastBody {
				last = parts[2]
			}
			if _, err := reg.CompleteUpload(ctx, pub, repo, u.ID, d, bytes.NewReader(last), nil, int64(len(last))); err != nil {
				t.Fatal(err)
			}
			if got := counted.written.Load(); got != int64(len(data)) {
				t.Errorf("the backend was given %d bytes to store for a blob of %d (%.2f×); want each byte once", got, len(data), float64(got)/float64(len(data)))
			}
			b, err := reg.OpenBlob(ctx, pub, repo, d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(b.Reader)
			b.Reader.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("blob read back: %d bytes, %v; want the %d bytes uploaded", len(got), err, len(data))
			}
			if keys := stagingKeys(t, env.DML.Blobs.Store()); len(keys) > 0 {
				t.Errorf("staging left after the upload: %v", keys)
			}
		})
	}
}

// stagingKeys lists the staging area of s.
func stagingKeys(t *testing.T, s *store.Store) []string {
	t.Helper()
	var keys []string
	if err := s.ListStaging(t.Context(), func(o store.StagingObject) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestChunkedUploadCrashMidPatch: a PATCH cut by a crash of the server,
// after it took the staged file and wrote part of its body, leaves the
// session where the last acknowledged PATCH left it; the upload then
// fails cleanly — the next PATCH is a conflict, the PUT refuses it as
// invalid — and no blob is made of it.
func TestChunkedUploadCrashMidPatch(t *testing.T) {
	env := domaintest.NewEnv(t)
	ctx, reg := env.Ctx, env.DML.Registry
	pub := env.Principal("pipeline", nil, access.RolePublisher)
	const repo = "apps/crashed"
	data := storetest.BodyBytes(33, 300_000)
	u, err := reg.StartUpload(ctx, pub, repo)
	if err != nil {
		t.Fatal(err)
	}
	if u, err = reg.AppendUpload(ctx, pub, repo, u.ID, bytes.NewReader(data[:100_000]), nil, 100_000); err != nil {
		t.Fatal(err)
	}
	// What the crashed PATCH left: the staged file moved to its next
	// name, with part of the body after the acknowledged bytes.
	root := env.DML.Blobs.Store().Backend().(*fs.Backend).Root()
	staged := filepath.Join(root, filepath.FromSlash(store.ChunkKey(u.ID, 1)))
	taken := filepath.Join(root, filepath.FromSlash(store.ChunkKey(u.ID, 2)))
	if err := os.Rename(staged, taken); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(taken, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[100_000:150_000]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	if got, err := reg.UploadStatus(ctx, pub, repo, u.ID); err != nil || got.Offset != 100_000 {
		t.Fatalf("status after the crash: offset %d, %v; want the 100000 bytes acknowledged", got.Offset, err)
	}
	if _, err := reg.AppendUpload(ctx, pub, repo, u.ID, bytes.NewReader(data[100_000:]), nil, 200_000); !errors.Is(err, errdef.ErrConflict) {
		t.Errorf("PATCH after the crash: %v, want ErrConflict", err)
	}
	d := digest.FromBytes(data[:100_000])
	if _, err := reg.CompleteUpload(ctx, pub, repo, u.ID, d, bytes.NewReader(nil), nil, 0); !errors.Is(err, registry.ErrUploadInvalid) {
		t.Errorf("PUT after the crash: %v, want ErrUploadInvalid", err)
	}
	if ok, err := env.DML.Blobs.Store().Exists(ctx, d); ok || err != nil {
		t.Errorf("a blob was made of the crashed upload: %v, %v", ok, err)
	}
	if keys := stagingKeys(t, env.DML.Blobs.Store()); len(keys) > 0 {
		t.Errorf("staging left after the upload failed: %v", keys)
	}
	if _, err := reg.UploadStatus(ctx, pub, repo, u.ID); !errors.Is(err, registry.ErrUploadUnknown) {
		t.Errorf("the failed upload's session: %v, want ErrUploadUnknown", err)
	}
}

// TestChunkedUploadCompletesWithEitherDigest: a chunked upload completes
// with the SHA-512 digest of its bytes as with their SHA-256 one (the
// SHA-512 one is checked by hashing the staged bytes at completion), and a
// SHA-512 digest of other bytes ends the upload with nothing stored.
func TestChunkedUploadCompletesWithEitherDigest(t *testing.T) {
	data := storetest.BodyBytes(35, 2<<20+777)
	for _, tc := range []struct {
		name string
		d    digest.Digest
		ok   bool
	}{
		{"sha256", digest.SHA256.FromBytes(data), true},
		{"sha512", digest.SHA512.FromBytes(data), true},
		{"sha512 of other bytes", digest.SHA512.FromBytes(data[1:]), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := domaintest.NewEnv(t)
			ctx, reg := env.Ctx, env.DML.Registry
			pub := env.Principal("pipeline", nil, access.RolePublisher)
			const repo = "apps/digests"
			u, err := reg.StartUpload(ctx, pub, repo)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range [][]byte{data[:1<<20], data[1<<20:]} {
				if u, err = reg.AppendUpload(ctx, pub, repo, u.ID, bytes.NewReader(p), nil, int64(len(p))); err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
			}
			_, err = reg.CompleteUpload(ctx, pub, repo, u.ID, tc.d, bytes.NewReader(nil), nil, 0)
			if !tc.ok {
				if !errors.Is(err, store.ErrDigestMismatch) {
					t.Fatalf("complete with %s: %v; want a digest mismatch", tc.d, err)
				}
				if _, err := reg.OpenBlob(ctx, pub, repo, tc.d); err == nil {
					t.Error("a blob is stored under the wrong digest")
				}
				return
			}
			if err != nil {
				t.Fatalf("complete with %s: %v", tc.d, err)
			}
			b, err := reg.OpenBlob(ctx, pub, repo, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(b.Reader)
			b.Reader.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("blob read back: %d bytes, %v; want the %d bytes uploaded", len(got), err, len(data))
			}
		})
	}
}
