package fs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
)

// open opens a backend on dir and closes it when t ends.
func open(t testing.TB, dir string) *fs.Backend {
	t.Helper()
	b, err := fs.New(dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

func TestLockKeepsOutASecondOpen(t *testing.T) {
	dir := t.TempDir()
	first, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open in the same
	// process conflicts exactly as another process's would.
	if b, err := fs.New(dir); err == nil {
		b.Close()
		t.Fatal("second open of a locked directory succeeded")
	} else if !strings.Contains(err.Error(), "in use by another") {
		t.Errorf("second open: %v, want an in-use error", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, dir) // released by Close
}

func TestNewRemovesTemporaryFilesOfACrash(t *testing.T) {
	dir := t.TempDir()
	b, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "_tmp", "put-123")
	if err := os.WriteFile(leftover, []byte("half a body"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Close()
	open(t, dir)
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file survived New: %v", err)
	}
}

func TestSweepRemovesOnlyOldTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir)
	old := filepath.Join(dir, "_tmp", "put-old")
	fresh := filepath.Join(dir, "_tmp", "put-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	longAgo := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
	n, err := b.Sweep(t.Context(), time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old temporary file: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file: %v", err)
	}
	os.Remove(fresh)
}

func TestKeysStayInsideTheRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	b := open(t, root)
	ctx := t.Context()
	for _, key := range []string{"../escape", "a/../../escape", "/tmp/escape", "_tmp/x", ".lock"} {
		if err := b.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, fs.ErrInvalidKey) {
			t.Errorf("put %q: %v, want ErrInvalidKey", key, err)
		}
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("files appeared next to the root: %v", entries)
	}
}

func TestListHidesInternalFiles(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir)
	ctx := t.Context()
	if err := b.Put(ctx, "blobs/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	inFlight := filepath.Join(dir, "_tmp", "put-inflight")
	if err := os.WriteFile(inFlight, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(inFlight)
	var keys []string
	err := b.List(ctx, "", func(info store.Info) error {
		keys = append(keys, info.Key)
		return nil
	})
	if err != nil || !slices.Equal(keys, []string{"blobs/x"}) {
		t.Errorf("list = %v, %v; want [blobs/x]", keys, err)
	}
}
