package api_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	"github.com/opencontainers/go-digest"
)

// TestOCIUploadSurvivesRestart: a chunked upload interrupted by a server
// restart resumes where it stopped and completes with the right digest.
// The session (offset and hash state) is in the database and the chunks
// in the blob store, both under the data directory the second server
// opens again.
func TestOCIUploadSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first, err := testserver.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	token := testserver.Token(t, first.DML, "pipeline", access.RolePublisher)
	data := bytes.Repeat([]byte("restart-safe "), 3<<16) // ~2.4 MiB
	third := len(data) / 3
	pub := registry{t: t, base: first.URL, token: token}
	start := pub.do(http.MethodPost, "/v2/apps/resume/blobs/uploads/", nil)
	pub.expect(start, http.StatusAccepted, "")
	loc := header(t, start, "Location")
	for _, c := range [][2]int{{0, third}, {third, 2 * third}} {
		pub.expect(pub.do(http.MethodPatch, loc, bytes.NewReader(data[c[0]:c[1]]), "Content-Range", fmt.Sprintf("%d-%d", c[0], c[1]-1)), http.StatusAccepted, "")
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second, err := testserver.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	pub.base = second.URL
	status := pub.do(http.MethodGet, loc, nil)
	pub.expect(status, http.StatusNoContent, "")
	if r := header(t, status, "Range"); r != fmt.Sprintf("0-%d", 2*third-1) {
		t.Fatalf("Range after the restart %q; want 0-%d", r, 2*third-1)
	}
	// Resending a chunk the first server stored is out of order.
	pub.expect(pub.do(http.MethodPatch, loc, bytes.NewReader(data[third:2*third]), "Content-Range", fmt.Sprintf("%d-%d", third, 2*third-1)), http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID")
	pub.expect(pub.do(http.MethodPatch, loc, bytes.NewReader(data[2*third:]), "Content-Range", fmt.Sprintf("%d-%d", 2*third, len(data)-1)), http.StatusAccepted, "")
	d := digest.FromBytes(data)
	put := pub.do(http.MethodPut, loc+"?digest="+d.String(), nil)
	pub.expect(put, http.StatusCreated, "")
	if got := header(t, put, "Docker-Content-Digest"); got != d.String() {
		t.Errorf("Docker-Content-Digest %s; want %s", got, d)
	}
	blob := pub.do(http.MethodGet, "/v2/apps/resume/blobs/"+d.String(), nil)
	pub.expect(blob, http.StatusOK, "")
	if sum := sha256.Sum256(blob.body); digest.NewDigestFromBytes(digest.SHA256, sum[:]) != d {
		t.Errorf("the blob read back does not hash to %s", d)
	}
	if keys := stagingKeys(t, second.DML); len(keys) > 0 {
		t.Errorf("chunks left after completion: %v", keys)
	}
}

// patternReader yields n bytes of a repeating pattern without allocating,
// so that only the server's allocations show in the process's counters.
type patternReader struct{ n, off int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		p[i] = byte((r.off + int64(i)) % 251)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// TestOCIChunkMemory: a 64 MiB chunk goes through the in-process server
// without being held in memory. runtime.MemStats.TotalAlloc counts every
// byte allocated on the heap, cumulatively, so unlike HeapInuse it does not
// depend on when the garbage collector runs: a server that buffered the
// chunk would allocate at least 64 MiB during the request; a streaming one
// allocates its copy buffers (tens of KiB) and the per-request state. The
// bound, a quarter of the chunk, leaves room for whatever else the process
// does meanwhile without letting a buffered chunk through.
func TestOCIChunkMemory(t *testing.T) {
	const chunk = 64 << 20
	e := newOCIEnv(t)
	start := e.pub.do(http.MethodPost, "/v2/apps/big/blobs/uploads/", nil)
	e.pub.expect(start, http.StatusAccepted, "")
	loc := e.url + header(t, start, "Location")

	req, err := http.NewRequest(http.MethodPatch, loc, &patternReader{n: chunk})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = chunk
	req.Header.Set("Content-Range", fmt.Sprintf("0-%d", chunk-1))
	req.SetBasicAuth("ci", e.pub.token)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %d", resp.StatusCode)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB while receiving a %d MiB chunk", allocated>>10, chunk>>20)
	if allocated > chunk/4 {
		t.Errorf("the server allocated %d MiB for a %d MiB chunk: it buffers chunks", allocated>>20, chunk>>20)
	}
	// And the chunk is complete and right.
	h := sha256.New()
	if _, err := io.Copy(h, &patternReader{n: chunk}); err != nil {
		t.Fatal(err)
	}
	d := digest.NewDigest(digest.SHA256, h)
	e.pub.expect(e.pub.do(http.MethodPut, header(t, start, "Location")+"?digest="+d.String(), nil), http.StatusCreated, "")
}

// TestOCIUploadSweep: abandoned uploads, session and chunks, are removed
// by age; fresh ones stay.
func TestOCIUploadSweep(t *testing.T) {
	e := newOCIEnv(t)
	start := e.pub.do(http.MethodPost, "/v2/apps/sweep/blobs/uploads/", nil)
	loc := header(t, start, "Location")
	e.pub.expect(e.pub.do(http.MethodPatch, loc, bytes.NewReader([]byte("some bytes"))), http.StatusAccepted, "")
	if n, err := e.svc.Registry.SweepUploads(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("sweep of fresh uploads = %d, %v; want 0", n, err)
	}
	e.pub.expect(e.pub.do(http.MethodGet, loc, nil), http.StatusNoContent, "")
	// Every upload is older than minus an hour.
	if n, err := e.svc.Registry.SweepUploads(t.Context(), -time.Hour); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1", n, err)
	}
	e.pub.expect(e.pub.do(http.MethodGet, loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	if keys := stagingKeys(t, e.svc); len(keys) > 0 {
		t.Errorf("chunks left after the sweep: %v", keys)
	}
}
