package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/dmlproject/dml/store/s3/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// flipper is a backend and a way to flip one byte of an object behind the
// server's back: in the file on disk, or in the object in the bucket.
type flipper struct {
	backend store.Backend
	flip    func(t *testing.T, key string)
}

func fsFlipper(t *testing.T) flipper {
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return flipper{backend: b, flip: func(t *testing.T, key string) {
		path := filepath.Join(b.Root(), filepath.FromSlash(key))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x01
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}}
}

func s3Flipper(t *testing.T) flipper {
	b := s3test.NewBackend(t, nil)
	c := s3test.Client(t)
	ctx := context.Background()
	return flipper{backend: b, flip: func(t *testing.T, key string) {
		obj, err := c.GetObject(ctx, b.Bucket(), key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x01
		if _, err := c.PutObject(ctx, b.Bucket(), key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}}
}

// TestCLIFsckFindsFlippedByte is the "must show" for fsck, on
// disk and in the bucket: dml fsck of a healthy store exits 0; after one
// byte of a blob is flipped on the backend it names the blob and exits 2,
// and the pull that follows is refused with BLOB_CORRUPT; pushing the same
// file again repairs it, and dml gc removes what nothing refers to.
func TestCLIFsckFindsFlippedByte(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) flipper
	}{{"fs", fsFlipper}, {"s3", s3Flipper}} {
		t.Run(tc.name, func(t *testing.T) {
			fl := tc.open(t)
			cliEnv(t, testserver.WithBackend(fl.backend))
			src, data := writeRandomFile(t, 200<<10)
			d := digest.FromBytes(data)
			mustRunCLI(t, "push", "payments/api", "1.0", src)

			out, errOut, err := runCLI(t, "fsck")
			if err != nil {
				t.Fatalf("fsck of a healthy store: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(errOut, "dml fsck: blobs:") {
				t.Errorf("no progress line on stderr (not a terminal): %q", errOut)
			}

			fl.flip(t, store.BlobKey(d))
			out, errOut, err = runCLI(t, "fsck")
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("fsck after a flipped byte: %v; want exit status 2\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "CORRUPT") || !strings.Contains(out, d.String()) || !strings.Contains(out, "payments/api:1.0") {
				t.Fatalf("fsck output does not name the corrupt blob and its artifact:\n%s", out)
			}
			t.Logf("dml fsck:\n%s", out)

			_, _, err = runCLI(t, "pull", "payments/api", "1.0", "--output-file", filepath.Join(t.TempDir(), "out"))
			if err == nil || !strings.Contains(err.Error(), "BLOB_CORRUPT") {
				t.Fatalf("pull after fsck: %v; want BLOB_CORRUPT", err)
			}
			t.Logf("dml pull: %v", err)

			mustRunCLI(t, "push", "payments/api", "1.0", src)
			if out, _, err := runCLI(t, "fsck"); err != nil {
				t.Fatalf("fsck after the repair: %v\n%s", err, out)
			}
			mustRunCLI(t, "pull", "payments/api", "1.0", "--output-file", filepath.Join(t.TempDir(), "out"))

			if _, _, err := runCLI(t, "gc", "--dry-run", "--grace", "-1s"); err == nil {
				t.Error("gc with a negative grace succeeded")
			}
			out = mustRunCLI(t, "gc", "--dry-run", "--grace", "0s")
			if !strings.Contains(out, "blobs would remove") {
				t.Errorf("gc --dry-run output:\n%s", out)
			}
		})
	}
}
