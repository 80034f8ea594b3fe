package fs_test

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/storetest"
)

const fullFSChild = "DML_TEST_FULL_FS_CHILD"

// TestPutOnFullFilesystem: on a filesystem that fills up, Put fails with
// store.ErrNoSpace (the kernel's ENOSPC, translated by the backend),
// leaves no file behind, and what was stored before reads back intact.
// The filesystem is a real one: a 1 MiB tmpfs mounted in a private user
// and mount namespace, so nothing outside the test sees it. The test runs
// itself again inside that namespace; where the kernel does not allow
// such namespaces it is skipped.
func TestPutOnFullFilesystem(t *testing.T) {
	if os.Getenv(fullFSChild) != "" {
		fullFilesystemChild(t)
		return
	}
	// The parent owns the mount point, so that it is removed once the
	// child, and with it the mount, is gone.
	cmd := exec.Command(os.Args[0], "-test.run=^TestPutOnFullFilesystem$", "-test.count=1")
	cmd.Env = append(os.Environ(), fullFSChild+"="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		t.Skipf("no private user and mount namespace here (%v): the full-filesystem test needs one", err)
	case strings.Contains(string(out), "SKIP:"):
		t.Skipf("%s", out)
	case err != nil:
		t.Fatalf("in the private namespace: %v\n%s", err, out)
	}
}

func fullFilesystemChild(t *testing.T) {
	dir := os.Getenv(fullFSChild)
	// Mounts made here must not propagate back to the host's namespace.
	if err := syscall.Mount("", "/", "", syscall.MS_PRIVATE|syscall.MS_REC, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Logf("SKIP: cannot mount a tmpfs in the namespace: %v", err)
		return
	}
	b := open(t, dir)
	ctx := t.Context()
	kept := storetest.BodyBytes(1, 100<<10)
	if err := b.Put(ctx, "blobs/kept", strings.NewReader(string(kept)), int64(len(kept))); err != nil {
		t.Fatalf("put while there is room: %v", err)
	}
	const big = 2 << 20
	err := b.Put(ctx, "blobs/big", storetest.Body(2, big), big)
	if !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("put of %d bytes on a 1 MiB filesystem: %v; want ErrNoSpace", big, err)
	}
	var left []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != ".lock" {
			left = append(left, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	if len(left) != 1 || left[0] != "/blobs/kept" {
		t.Errorf("files after the failed put: %v; want only /blobs/kept", left)
	}
	rc, err := b.Get(ctx, "blobs/kept", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != string(kept) {
		t.Errorf("the blob stored before the disk filled reads back as %d bytes (%v)", len(got), err)
	}
}
