package api_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dmlproject/dml/store"
)

// A blob larger than the buffers the server copies through is served
// whole, as a range that crosses buffer boundaries, as a range from an
// offset to its end, and as several ranges (multipart), byte for byte.
func TestServeBlobsLargerThanTheCopyBuffers(t *testing.T) {
	e := newOCIEnv(t)
	body := make([]byte, 3*store.CopyBufferSize+4321)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	desc := e.pub.pushBlob("serve/big", body, ocispec.MediaTypeImageLayer)
	path := "/v2/serve/big/blobs/" + desc.Digest.String()
	size := len(body)

	resp := e.pub.do(http.MethodGet, path, nil)
	e.pub.expect(resp, http.StatusOK, "")
	if !bytes.Equal(resp.body, body) {
		t.Fatalf("whole GET: %d bytes, equal %v", len(resp.body), bytes.Equal(resp.body, body))
	}
	for _, r := range [][2]int{
		{store.CopyBufferSize - 10, 2*store.CopyBufferSize + 10},
		{store.CopyBufferSize + 1, size - 1},
		{0, store.CopyBufferSize},
	} {
		resp := e.pub.do(http.MethodGet, path, nil, "Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		e.pub.expect(resp, http.StatusPartialContent, "")
		if want := body[r[0] : r[1]+1]; !bytes.Equal(resp.body, want) {
			t.Errorf("range %d-%d: %d bytes, want %d", r[0], r[1], len(resp.body), len(want))
		}
	}

	resp = e.pub.do(http.MethodGet, path, nil, "Range", fmt.Sprintf("bytes=10-20,%d-%d", 2*store.CopyBufferSize, 2*store.CopyBufferSize+99))
	e.pub.expect(resp, http.StatusPartialContent, "")
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(bytes.NewReader(resp.body), params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		var from, to int
		if _, err := fmt.Sscanf(strings.TrimPrefix(p.Header.Get("Content-Range"), "bytes "), "%d-%d/", &from, &to); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, body[from:to+1]) {
			t.Errorf("part %d-%d: wrong bytes", from, to)
		}
		parts = append(parts, fmt.Sprintf("%d-%d", from, to))
	}
	if want := []string{"10-20", fmt.Sprintf("%d-%d", 2*store.CopyBufferSize, 2*store.CopyBufferSize+99)}; fmt.Sprint(parts) != fmt.Sprint(want) {
		t.Errorf("parts %v; want %v", parts, want)
	}
}
