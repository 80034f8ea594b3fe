package s3_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/s3"
	"github.com/dmlproject/dml/store/s3/s3test"
	"github.com/dmlproject/dml/store/storetest"
)

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []s3.Config{
		{Bucket: "b"},
		{Endpoint: "127.0.0.1:1"},
		{Endpoint: "127.0.0.1:1", Bucket: "b", PartSize: s3.MinPartSize - 1},
		{Endpoint: "127.0.0.1:1", Bucket: "b", PartSize: s3.MaxPartSize + 1},
		{Endpoint: "127.0.0.1:1", Bucket: "b", Prefix: "/abs"},
	} {
		if _, err := s3.New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestSizeLimit(t *testing.T) {
	b, err := s3.New(context.Background(), s3.Config{Endpoint: "127.0.0.1:1", Bucket: "b", PartSize: s3.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.MaxObjectSize(), int64(s3.MinPartSize)*10000; got != want {
		t.Errorf("MaxObjectSize = %d, want %d", got, want)
	}
	if got := store.New(b).MaxSize(); got != b.MaxObjectSize() {
		t.Errorf("store limit = %d, want the backend's %d", got, b.MaxObjectSize())
	}
	// Refused before any request: the endpoint does not even exist.
	err = b.Put(context.Background(), "k", strings.NewReader(""), b.MaxObjectSize()+1)
	if !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("put above the limit: %v, want ErrTooLarge", err)
	}
}

func TestKeysLiveUnderThePrefix(t *testing.T) {
	b := s3test.NewBackend(t, func(c *s3.Config) { c.Prefix = "dml" })
	ctx := t.Context()
	if b.Prefix() != "dml/" {
		t.Errorf("prefix = %q, want a trailing slash added", b.Prefix())
	}
	if err := b.Put(ctx, "blobs/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	var names []string
	for oi := range s3test.Client(t).ListObjects(ctx, b.Bucket(), minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		names = append(names, oi.Key)
	}
	if !slices.Equal(names, []string{"dml/blobs/x"}) {
		t.Errorf("objects in the bucket = %v, want [dml/blobs/x]", names)
	}
}

func TestMissingBucket(t *testing.T) {
	cfg := s3test.Config(t)
	cfg.CreateBucket = false
	b, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(t.Context()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ping: %v, want ErrNotFound", err)
	}
	if _, err := b.Get(t.Context(), "k", 0, -1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get: %v, want ErrNotFound", err)
	}
}

// Move must also work above 5 GiB, where S3 refuses CopyObject. A lowered
// copy part size sends a 10 MiB object through the same multipart copy, in
// two parts (minio-go splits evenly, and each part must be at least 5 MiB).
func TestMoveByMultipartCopy(t *testing.T) {
	b := s3test.NewBackend(t, nil)
	s3.SetCopyPartSize(b, s3.MinPartSize)
	ctx := t.Context()
	const size = 2 * s3.MinPartSize
	if err := b.Put(ctx, "uploads/big", storetest.Body(1, size), size); err != nil {
		t.Fatal(err)
	}
	if err := b.Move(ctx, "uploads/big", "blobs/big"); err != nil {
		t.Fatalf("move: %v", err)
	}
	if _, err := b.Stat(ctx, "uploads/big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("source after move: %v, want ErrNotFound", err)
	}
	rc, err := b.Get(ctx, "blobs/big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want := storetest.BodyDigest("sha256", 1, size)
	if got, n := storetest.ReadDigest(t, "sha256", rc); got != want || n != size {
		t.Errorf("moved object: %d bytes hashing to %s, want %d bytes of %s", n, got, size, want)
	}
	if n, err := b.Sweep(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("sweep after the copy = %d, %v; want nothing left", n, err)
	}
}

// Sweep aborts old incomplete uploads under the prefix, one upload ID at a
// time: a newer upload of the same key and anything outside the prefix stay.
func TestSweepAbortsStaleUploads(t *testing.T) {
	b := s3test.NewBackend(t, func(c *s3.Config) { c.Prefix = "dml/" })
	ctx := t.Context()
	core := minio.Core{Client: s3test.Client(t)}
	for _, name := range []string{"dml/blobs/crashed", "outside/crashed"} {
		if _, err := core.NewMultipartUpload(ctx, b.Bucket(), name, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.Sweep(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("sweep of uploads older than an hour = %d, %v; want 0", n, err)
	}
	// A cutoff in the future stands in for waiting: uploads cannot be aged.
	cutoff := time.Now().Add(time.Hour)
	if n, err := b.Sweep(ctx, cutoff); err != nil || n != 1 {
		t.Errorf("sweep = %d, %v; want 1", n, err)
	}
	var left []string
	for u := range core.ListIncompleteUploads(ctx, b.Bucket(), "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		left = append(left, u.Key)
	}
	if !slices.Equal(left, []string{"outside/crashed"}) {
		t.Errorf("incomplete uploads left = %v, want only the one outside the prefix", left)
	}

	// Through the store, as the server's periodic cleanup calls it.
	if _, err := core.NewMultipartUpload(ctx, b.Bucket(), "dml/uploads/x", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := store.New(b).CleanStaging(ctx, -time.Hour); err != nil || n != 1 {
		t.Errorf("clean staging = %d, %v; want 1", n, err)
	}
}

// A failed multipart upload is aborted by the Put itself, not left for a sweep.
func TestFailedPutLeavesNoIncompleteUpload(t *testing.T) {
	b := s3test.NewBackend(t, func(c *s3.Config) { c.PartSize = s3.MinPartSize })
	ctx := t.Context()
	const size = 3 * s3.MinPartSize
	body := storetest.FaultyReader(storetest.Body(1, size), 2*s3.MinPartSize+1, false)
	if err := b.Put(ctx, "blobs/x", body, size); !errors.Is(err, storetest.ErrReader) {
		t.Fatalf("put: %v, want %v", err, storetest.ErrReader)
	}
	for u := range s3test.Client(t).ListIncompleteUploads(ctx, b.Bucket(), "", true) {
		t.Errorf("incomplete upload left: %s %s (%v)", u.Key, u.UploadID, u.Err)
	}
	if _, err := b.Stat(ctx, "blobs/x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat: %v, want ErrNotFound", err)
	}
}

// TestUnavailable: with the server stopped, every operation fails with
// store.ErrUnavailable, not with minio-go's own errors, within minio-go's
// bounded retries; once the server is back the same backend works again.
func TestUnavailable(t *testing.T) {
	gw := s3test.StartGateway(t)
	b, err := s3.New(t.Context(), gw.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.Put(ctx, "blobs/kept", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
	gw.Stop()
	ops := map[string]func() error{
		"ping": func() error { return b.Ping(ctx) },
		"stat": func() error { _, err := b.Stat(ctx, "blobs/kept"); return err },
		"get": func() error {
			rc, err := b.Get(ctx, "blobs/kept", 0, -1)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"put":               func() error { return b.Put(ctx, "blobs/new", strings.NewReader("new"), 3) },
		"put, unknown size": func() error { return b.Put(ctx, "blobs/new", strings.NewReader("new"), -1) },
		"move":              func() error { return b.Move(ctx, "blobs/kept", "blobs/moved") },
		"delete":            func() error { return b.Delete(ctx, "blobs/kept") },
		"list":              func() error { return b.List(ctx, "blobs/", func(store.Info) error { return nil }) },
		"sweep":             func() error { _, err := b.Sweep(ctx, time.Now()); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the server stopped: %v; want ErrUnavailable", name, err)
		}
	}
	gw.Start()
	rc, err := b.Get(ctx, "blobs/kept", 0, -1)
	if err != nil {
		t.Fatalf("get after the restart: %v", err)
	}
	defer rc.Close()
	if got, _ := storetest.ReadDigest(t, "sha256", rc); got != digest.FromString("kept") {
		t.Errorf("the object read back after the restart is not what was stored")
	}
}

// A cancelled context is the caller giving up, not the server being down.
func TestCancelledIsNotUnavailable(t *testing.T) {
	b := s3test.NewBackend(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Stat(ctx, "blobs/x"); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("stat with a cancelled context: %v; want an error that is not ErrUnavailable", err)
	}
}
