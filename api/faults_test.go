package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/store"
	dmlfs "github.com/dmlproject/dml/store/fs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// filesOnDisk lists every file under the fs backend's root (blobs,
// staging, chunks and temporary files alike) except its lock.
func filesOnDisk(t *testing.T, svc *releases.DML) []string {
	t.Helper()
	root := backendRoot(t, svc)
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != ".lock" {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func backendRoot(t *testing.T, svc *releases.DML) string {
	t.Helper()
	switch b := svc.Blobs.Store().Backend().(type) {
	case *dmlfs.Backend:
		return b.Root()
	case *fullDisk:
		return b.Root()
	}
	t.Fatalf("not an fs backend: %T", svc.Blobs.Store().Backend())
	return ""
}

// expectSameFiles fails the test when the files on disk changed.
func expectSameFiles(t *testing.T, what string, before, after []string) {
	t.Helper()
	if !slices.Equal(before, after) {
		t.Errorf("%s changed the files on disk:\nbefore %v\nafter  %v", what, before, after)
	}
}

func checksum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestRefusedRequestsLeaveNoBlobs (item 9a): a push refused with 409 or
// 403 leaves no file behind: not the new bytes, not a staging file.
func TestRefusedRequestsLeaveNoBlobs(t *testing.T) {
	e := newOCIEnv(t)
	const name = "apps/refused"
	url := e.url + "/api/v1/artifacts/" + name + "/versions/"
	first, other := []byte("the first bytes of 1.0"), []byte("other bytes for 1.0")
	if code := apiCall(t, http.MethodPut, url+"1.0", e.pub.token, first, nil); code != http.StatusCreated {
		t.Fatalf("first push: %d", code)
	}

	before := filesOnDisk(t, e.svc)
	put := func(version string, body []byte, headers ...string) (int, errorView) {
		req, _ := http.NewRequest(http.MethodPut, url+version, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.pub.token)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ev errorView
		data, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(data, &ev)
		return resp.StatusCode, ev
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		headers []string
	}{
		{"different bytes", other, nil},
		{"different bytes with their checksum", other, []string{"X-Checksum-Sha256", checksum(other)}},
		{"different bytes of the same length", []byte("the first bytes of 2.0"), nil},
		{"a longer body", append(slices.Clone(first), '!'), nil},
	} {
		code, ev := put("1.0", tc.body, tc.headers...)
		if code != http.StatusConflict || len(ev.Errors) == 0 || ev.Errors[0].Code != "VERSION_EXISTS" {
			t.Errorf("%s: %d %+v; want 409 VERSION_EXISTS", tc.name, code, ev)
		}
		expectSameFiles(t, tc.name, before, filesOnDisk(t, e.svc))
	}
	if code, _ := put("1.0", first); code != http.StatusOK {
		t.Errorf("identical re-push: %d; want 200", code)
	}
	expectSameFiles(t, "an identical re-push", before, filesOnDisk(t, e.svc))

	// Racing pushes of different bytes to one new version: one wins, the
	// others are refused, and only the winner's bytes are stored.
	const racers = 8
	codes := make([]int, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { codes[i], _ = put("2.0", []byte(fmt.Sprintf("racer %d of 2.0", i))) })
	}
	wg.Wait()
	slices.Sort(codes)
	if want := append([]int{http.StatusCreated}, slices.Repeat([]int{http.StatusConflict}, racers-1)...); !slices.Equal(codes, want) {
		t.Errorf("racing pushes answered %v; want one 201 and %d 409", codes, racers-1)
	}
	if n := len(filesOnDisk(t, e.svc)) - len(before); n != 1 {
		t.Errorf("racing pushes stored %d files; want the winner's one", n)
	}

	// OCI: a manifest PUT onto a tag that cannot move.
	v1 := e.pub.pushImage(name, "v1", nil, "")
	e.pub.expect(e.pub.pushManifest(name, "oci-1.0", ocispec.MediaTypeImageManifest, v1.manifest), http.StatusCreated, "")
	e.admit(name, "oci-1.0", v1.manifest)
	v2 := e.pub.pushImage(name, "v2", nil, "")
	if code := apiCall(t, http.MethodPut, url+"3.0", e.pub.token, []byte("a REST version"), nil); code != http.StatusCreated {
		t.Fatalf("REST push: %d", code)
	}
	e.pub.expect(e.pub.pushManifest(name, "by-pub", ocispec.MediaTypeImageManifest, v1.manifest), http.StatusCreated, "")
	before = filesOnDisk(t, e.svc)
	for _, tc := range []struct {
		what   string
		as     registry
		tag    string
		status int
		code   string
	}{
		{"onto an admitted tag", e.pub, "oci-1.0", http.StatusConflict, "DENIED"},
		{"onto a REST version", e.pub, "3.0", http.StatusConflict, "DENIED"},
		{"onto another publisher's tag", e.pub2, "by-pub", http.StatusForbidden, "DENIED"},
	} {
		tc.as.expect(tc.as.pushManifest(name, tc.tag, ocispec.MediaTypeImageManifest, v2.manifest), tc.status, tc.code)
		expectSameFiles(t, "a manifest PUT "+tc.what, before, filesOnDisk(t, e.svc))
	}
}

// fullDisk is the fs backend on a disk that fills up: once free bytes
// have been written, writes fail with ENOSPC, the error a full filesystem
// gives, which the fs backend must translate. (The failure comes through
// the body the backend copies into its temporary file, at the moment
// the copy writes past the free space.)
type fullDisk struct {
	*dmlfs.Backend
	free atomic.Int64
}

func (d *fullDisk) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return d.Backend.Put(ctx, key, &spaceReader{r: r, d: d}, size)
}

// Append fills the disk like Put: it is how chunked uploads write.
func (d *fullDisk) Append(ctx context.Context, src, dst string, offset int64, r io.Reader, size int64) (int64, error) {
	return d.Backend.Append(ctx, src, dst, offset, &spaceReader{r: r, d: d}, size)
}

// Stage is the fs backend's other way of writing a body (store.Stager),
// filled the same way.
func (d *fullDisk) Stage(ctx context.Context, r io.Reader, size int64) (store.Staged, error) {
	return d.Backend.Stage(ctx, &spaceReader{r: r, d: d}, size)
}

type spaceReader struct {
	r io.Reader
	d *fullDisk
}

func (s *spaceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if s.d.free.Add(-int64(n)) < 0 {
		return 0, &os.PathError{Op: "write", Path: "_tmp/put", Err: syscall.ENOSPC}
	}
	return n, err
}

// TestFullDiskAnswers507 (item 13): pushes to a full filesystem answer
// 507 INSUFFICIENT_STORAGE on every route, leave no file behind and
// corrupt nothing; once space is freed they succeed.
func TestFullDiskAnswers507(t *testing.T) {
	inner, err := dmlfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	disk := &fullDisk{Backend: inner}
	disk.free.Store(1 << 30)
	srv, _, svc := testserver.New(t, testserver.WithBackend(disk))
	pub := testserver.Token(t, svc, "pipeline", access.RolePublisher)
	reg := registry{t: t, base: srv.URL, token: pub}
	url := srv.URL + "/api/v1/artifacts/apps/full/versions/"
	stored := bytes.Repeat([]byte("stored while there was room\n"), 1000)
	if code := apiCall(t, http.MethodPut, url+"1.0", pub, stored, nil); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	start := reg.do(http.MethodPost, "/v2/apps/full/blobs/uploads/", nil)
	reg.expect(start, http.StatusAccepted, "")
	loc := header(t, start, "Location")

	disk.free.Store(10 << 10) // 10 KiB left
	before := filesOnDisk(t, svc)
	big := bytes.Repeat([]byte("does not fit\n"), 10000)
	d := digest.FromBytes(big)
	for _, tc := range []struct {
		what string
		do   func() (int, string)
	}{
		{"REST push", func() (int, string) {
			var ev errorView
			code := apiCall(t, http.MethodPut, url+"2.0", pub, big, &ev)
			return code, firstCode(ev)
		}},
		{"REST push with checksum", func() (int, string) {
			req, _ := http.NewRequest(http.MethodPut, url+"2.0", bytes.NewReader(big))
			req.Header.Set("Authorization", "Bearer "+pub)
			req.Header.Set("X-Checksum-Sha256", checksum(big))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ev errorView
			data, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(data, &ev)
			return resp.StatusCode, firstCode(ev)
		}},
		{"/v2/ monolithic push", func() (int, string) {
			r := reg.do(http.MethodPost, "/v2/apps/full/blobs/uploads/?digest="+d.String(), bytes.NewReader(big))
			return r.StatusCode, r.errorCode()
		}},
		{"/v2/ chunk", func() (int, string) {
			r := reg.do(http.MethodPatch, loc, bytes.NewReader(big), "Content-Range", fmt.Sprintf("0-%d", len(big)-1))
			return r.StatusCode, r.errorCode()
		}},
	} {
		if code, ec := tc.do(); code != http.StatusInsufficientStorage || ec != "INSUFFICIENT_STORAGE" {
			t.Errorf("%s on a full disk: %d %s; want 507 INSUFFICIENT_STORAGE", tc.what, code, ec)
		}
		expectSameFiles(t, tc.what+" on a full disk", before, filesOnDisk(t, svc))
	}
	var got []byte
	req, _ := http.NewRequest(http.MethodGet, url+"1.0/content", nil)
	req.Header.Set("Authorization", "Bearer "+pub)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if !bytes.Equal(got, stored) {
		t.Errorf("the artifact stored before the disk filled reads back as %d bytes", len(got))
	}

	disk.free.Store(1 << 30)
	if code := apiCall(t, http.MethodPut, url+"2.0", pub, big, nil); code != http.StatusCreated {
		t.Errorf("push once space is freed: %d", code)
	}
	reg.expect(reg.do(http.MethodPatch, loc, bytes.NewReader(big), "Content-Range", fmt.Sprintf("0-%d", len(big)-1)), http.StatusAccepted, "")
	reg.expect(reg.do(http.MethodPut, loc+"?digest="+d.String(), nil), http.StatusCreated, "")
	if ok, err := svc.Blobs.Store().Exists(t.Context(), d); !ok || err != nil {
		t.Errorf("blob after space was freed: %v %v", ok, err)
	}
	var _ store.Backend = disk
}

func firstCode(ev errorView) string {
	if len(ev.Errors) == 0 {
		return ""
	}
	return ev.Errors[0].Code
}
