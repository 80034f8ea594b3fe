package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/store"
)

// Body sizes the failure cases run with. partSized is twice S3's 5 MiB
// minimum part size: an S3 backend tested with that part size then uploads
// it in parts, and its last part ends exactly on a part boundary, where
// minio-go once dropped a reader error that came with the last byte.
const (
	small     = 1000
	partSized = 10 << 20
	largeSize = 64 << 20
)

var failureSizes = []int64{small, partSized}

// Run checks the backends newBackend returns against the store.Backend
// contract, directly and through store.Store. newBackend must return a
// new, empty backend on every call and clean it up when t ends; Run asks
// for one per subtest. After every subtest Run checks that no staging key
// and no hidden partial write (see store.Sweeper) was left behind.
func Run(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	fresh := func(t *testing.T) store.Backend {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() { assertNoLeftovers(t, b) })
		return b
	}
	t.Run("Backend", func(t *testing.T) { runBackend(t, fresh) })
	t.Run("Store", func(t *testing.T) { runStore(t, fresh) })
	t.Run("Uploads", func(t *testing.T) { runUploads(t, fresh) })
	t.Run("Integrity", func(t *testing.T) { runIntegrity(t, fresh) })
}

// assertNoLeftovers fails t if staging keys or backend partial writes
// remain. It runs in a cleanup, after t.Context is cancelled.
func assertNoLeftovers(t *testing.T, b store.Backend) {
	ctx := context.Background()
	if keys := listKeys(t, ctx, b, "uploads/"); len(keys) > 0 {
		t.Errorf("staging keys left behind: %v", keys)
	}
	if sw, ok := b.(store.Sweeper); ok {
		// Nothing is in flight now, so a cutoff in the future finds every
		// partial write there is: there should be none.
		n, err := sw.Sweep(ctx, time.Now().Add(time.Hour))
		if err != nil {
			t.Errorf("sweep: %v", err)
		} else if n > 0 {
			t.Errorf("%d partial writes (temporary files, incomplete multipart uploads) left behind", n)
		}
	}
}

// listKeys returns the sorted keys under prefix.
func listKeys(t testing.TB, ctx context.Context, b store.Backend, prefix string) []string {
	t.Helper()
	var keys []string
	err := b.List(ctx, prefix, func(info store.Info) error {
		keys = append(keys, info.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	slices.Sort(keys)
	return keys
}

// assertEmpty fails t unless the backend holds no key at all.
func assertEmpty(t testing.TB, ctx context.Context, b store.Backend) {
	t.Helper()
	if keys := listKeys(t, ctx, b, ""); len(keys) > 0 {
		t.Errorf("backend should be empty, holds %v", keys)
	}
}

func put(t testing.TB, ctx context.Context, b store.Backend, key string, data []byte) {
	t.Helper()
	if err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t testing.TB, ctx context.Context, b store.Backend, key string, offset, length int64) []byte {
	t.Helper()
	rc, err := b.Get(ctx, key, offset, length)
	if err != nil {
		t.Fatalf("get %s [%d,%d]: %v", key, offset, length, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s [%d,%d]: %v", key, offset, length, err)
	}
	return data
}

func runBackend(t *testing.T, fresh func(*testing.T) store.Backend) {
	t.Run("RoundTrip", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		for _, tc := range []struct {
			key       string
			data      []byte
			knownSize bool
		}{
			{"one", []byte("hello"), true},
			{"a/b/c/deep", BodyBytes(1, 70_000), true},
			{"size/unknown", BodyBytes(2, 3000), false},
			{"empty", nil, true},
			{"empty-unknown", nil, false},
		} {
			size := int64(len(tc.data))
			if !tc.knownSize {
				size = -1
			}
			if err := b.Put(ctx, tc.key, bytes.NewReader(tc.data), size); err != nil {
				t.Fatalf("put %s: %v", tc.key, err)
			}
			if got := get(t, ctx, b, tc.key, 0, -1); !bytes.Equal(got, tc.data) {
				t.Errorf("%s: read back %d bytes, want %d", tc.key, len(got), len(tc.data))
			}
			info, err := b.Stat(ctx, tc.key)
			if err != nil {
				t.Fatalf("stat %s: %v", tc.key, err)
			}
			if info.Key != tc.key || info.Size != int64(len(tc.data)) || info.ModTime.IsZero() {
				t.Errorf("stat %s = %+v, want key %s, size %d and a modification time", tc.key, info, tc.key, len(tc.data))
			}
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		put(t, ctx, b, "k", []byte("first version"))
		put(t, ctx, b, "k", []byte("second"))
		if got := get(t, ctx, b, "k", 0, -1); string(got) != "second" {
			t.Errorf("after replacing: %q", got)
		}
	})

	t.Run("FailedPut", func(t *testing.T) {
		for _, size := range failureSizes {
			for _, tc := range []struct {
				name     string
				body     io.Reader
				declared int64
				want     error // nil: any error
			}{
				{"reader fails midway", FaultyReader(Body(1, size), size/2, false), size, ErrReader},
				{"reader fails midway, size unknown", FaultyReader(Body(1, size), size/2, false), -1, ErrReader},
				{"reader fails with the last byte", FaultyReader(Body(1, size), size, true), size, ErrReader},
				{"reader fails with the last byte, size unknown", FaultyReader(Body(1, size), size, true), -1, ErrReader},
				{"reader fails instead of EOF", FaultyReader(Body(1, size), size, false), size, ErrReader},
				{"reader fails instead of EOF, size unknown", FaultyReader(Body(1, size), size, false), -1, ErrReader},
				{"body shorter than declared", Body(1, size), size + 1, nil},
				{"body longer than declared", Body(1, size), size - 1, nil},
			} {
				t.Run(fmt.Sprintf("%s/%d", tc.name, size), func(t *testing.T) {
					ctx := t.Context()
					b := fresh(t)
					err := b.Put(ctx, "blobs/new", tc.body, tc.declared)
					if err == nil {
						t.Fatal("put succeeded")
					}
					if tc.want != nil && !errors.Is(err, tc.want) {
						t.Errorf("put: %v, want %v", err, tc.want)
					}
					if _, err := b.Stat(ctx, "blobs/new"); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("stat after failed put: %v, want ErrNotFound", err)
					}
					assertEmpty(t, ctx, b)
				})
			}
		}
	})

	t.Run("FailedPutKeepsPrevious", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		put(t, ctx, b, "k", []byte("previous"))
		if err := b.Put(ctx, "k", FaultyReader(Body(1, 5000), 2000, false), 5000); !errors.Is(err, ErrReader) {
			t.Fatalf("put: %v, want %v", err, ErrReader)
		}
		if got := get(t, ctx, b, "k", 0, -1); string(got) != "previous" {
			t.Errorf("after a failed replacement: %q", got)
		}
	})

	t.Run("Range", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		data := BodyBytes(3, 1000)
		put(t, ctx, b, "r", data)
		put(t, ctx, b, "empty", nil)
		for _, tc := range []struct {
			key            string
			offset, length int64
			want           []byte
			err            error
		}{
			{"r", 0, -1, data, nil},
			{"r", 0, 10, data[:10], nil},
			{"r", 10, -1, data[10:], nil},
			{"r", 100, 200, data[100:300], nil},
			{"r", 990, 100, data[990:], nil},
			{"r", 999, 1, data[999:], nil},
			{"r", 0, 0, nil, nil},
			{"r", 1000, -1, nil, nil},
			{"r", 1000, 5, nil, nil},
			{"r", 1001, -1, nil, store.ErrInvalidRange},
			{"r", 5000, 10, nil, store.ErrInvalidRange},
			{"empty", 0, -1, nil, nil},
			{"empty", 0, 10, nil, nil},
			{"empty", 1, -1, nil, store.ErrInvalidRange},
		} {
			rc, err := b.Get(ctx, tc.key, tc.offset, tc.length)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("get %s [%d,%d]: %v, want %v", tc.key, tc.offset, tc.length, err, tc.err)
				}
				if err == nil {
					rc.Close()
				}
				continue
			}
			if err != nil {
				t.Errorf("get %s [%d,%d]: %v", tc.key, tc.offset, tc.length, err)
				continue
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("get %s [%d,%d]: %d bytes (%v), want %d", tc.key, tc.offset, tc.length, len(got), err, len(tc.want))
			}
		}
	})

	t.Run("Missing", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		if _, err := b.Stat(ctx, "no/such/key"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("stat: %v, want ErrNotFound", err)
		}
		if rc, err := b.Get(ctx, "no/such/key", 0, -1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get: %v, want ErrNotFound", err)
			if err == nil {
				rc.Close()
			}
		}
		if rc, err := b.Get(ctx, "no/such/key", 10, 5); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ranged get: %v, want ErrNotFound", err)
			if err == nil {
				rc.Close()
			}
		}
		if err := b.Move(ctx, "no/such/key", "dst"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("move: %v, want ErrNotFound", err)
		}
		if err := b.Delete(ctx, "no/such/key"); err != nil {
			t.Errorf("delete: %v, want nil", err)
		}
		assertEmpty(t, ctx, b)
	})

	t.Run("MoveAndDelete", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		put(t, ctx, b, "uploads/x", []byte("payload"))
		put(t, ctx, b, "blobs/y", []byte("old"))
		if err := b.Move(ctx, "uploads/x", "blobs/y"); err != nil {
			t.Fatalf("move: %v", err)
		}
		if got := get(t, ctx, b, "blobs/y", 0, -1); string(got) != "payload" {
			t.Errorf("moved onto an existing key: %q", got)
		}
		if err := b.Move(ctx, "blobs/y", "new/dir/z"); err != nil {
			t.Fatalf("move to a new directory: %v", err)
		}
		if keys := listKeys(t, ctx, b, ""); !slices.Equal(keys, []string{"new/dir/z"}) {
			t.Errorf("keys after moves: %v", keys)
		}
		if err := b.Delete(ctx, "new/dir/z"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		assertEmpty(t, ctx, b)
	})

	t.Run("List", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		keys := []string{"list/a/1", "list/a/2", "list/ab", "list/b/c/d", "other"}
		for _, k := range keys {
			put(t, ctx, b, k, []byte(k))
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", keys},
			{"list/", keys[:4]},
			{"list/a/", keys[:2]},
			{"list/a", keys[:3]},
			{"list/b/c/", keys[3:4]},
			{"nothing/", nil},
		} {
			if got := listKeys(t, ctx, b, tc.prefix); !slices.Equal(got, tc.want) {
				t.Errorf("list %q = %v, want %v", tc.prefix, got, tc.want)
			}
		}
		var sizes []int64
		err := b.List(ctx, "list/a/", func(info store.Info) error {
			if info.ModTime.IsZero() {
				t.Errorf("%s: no modification time", info.Key)
			}
			sizes = append(sizes, info.Size)
			return nil
		})
		if err != nil || !slices.Equal(sizes, []int64{8, 8}) {
			t.Errorf("list sizes = %v (%v), want [8 8]", sizes, err)
		}
		stop := errors.New("stop")
		if err := b.List(ctx, "", func(store.Info) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("list returned %v, want the callback's error", err)
		}
		for _, k := range keys {
			if err := b.Delete(ctx, k); err != nil {
				t.Fatalf("delete %s: %v", k, err)
			}
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		put(t, ctx, b, "a/b", []byte("x"))
		for _, key := range []string{"", "/abs", "..", "../up", "a/../../up", "a//b", "a/", "./a", "a/./b"} {
			if err := b.Put(ctx, key, strings.NewReader("x"), 1); err == nil {
				t.Errorf("put %q succeeded", key)
			}
			if rc, err := b.Get(ctx, key, 0, -1); err == nil {
				rc.Close()
				t.Errorf("get %q succeeded", key)
			}
			if _, err := b.Stat(ctx, key); err == nil {
				t.Errorf("stat %q succeeded", key)
			}
			if err := b.Delete(ctx, key); err == nil {
				t.Errorf("delete %q succeeded", key)
			}
			if err := b.Move(ctx, "a/b", key); err == nil {
				t.Errorf("move to %q succeeded", key)
			}
		}
		if keys := listKeys(t, ctx, b, ""); !slices.Equal(keys, []string{"a/b"}) {
			t.Errorf("keys after invalid operations: %v", keys)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := fresh(t).Ping(t.Context()); err != nil {
			t.Errorf("ping: %v", err)
		}
	})
}
