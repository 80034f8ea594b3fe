package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const ociE2EToken = "oci-e2e-admin-token-0123456789"

// TestOCIChunkPeakMemory measures the dml process's peak resident memory
// (VmHWM) while it receives an 8 MiB chunk and then a 128 MiB chunk over
// /v2/, each completed into a blob: the peak must not grow with the chunk
// (the bound, a quarter of the larger chunk, is far below what holding it
// would need and far above the noise of a streaming server).
func TestOCIChunkPeakMemory(t *testing.T) {
	srv := startServer(t, []string{"DML_BOOTSTRAP_TOKEN=" + ociE2EToken}, "--data-dir", t.TempDir())
	if _, err := peakRSS(srv.cmd.Process.Pid); err != nil {
		t.Skipf("no peak memory figure for the server: %v", err)
	}
	token := issuePublisher(t, srv.url())
	chunkUpload := func(size int64) {
		t.Helper()
		content := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{byte(size >> 20)}), size) }
		h := sha256.New()
		if _, err := io.Copy(h, content()); err != nil {
			t.Fatal(err)
		}
		d := digest.NewDigest(digest.SHA256, h)
		resp := ociRequest(t, http.MethodPost, srv.url()+"/v2/e2e/memory/blobs/uploads/", token, nil, -1, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start upload: %s", resp.Status)
		}
		loc := srv.url() + resp.Header.Get("Location")
		resp = ociRequest(t, http.MethodPatch, loc, token, content(), size, map[string]string{"Content-Range": fmt.Sprintf("0-%d", size-1)})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d MiB: %s", size>>20, resp.Status)
		}
		resp = ociRequest(t, http.MethodPut, loc+"?digest="+d.String(), token, nil, 0, nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("complete %d MiB: %s", size>>20, resp.Status)
		}
	}
	chunkUpload(8 << 20)
	small, err := peakRSS(srv.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	const large = 128 << 20
	chunkUpload(large)
	big, err := peakRSS(srv.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server peak RSS: %d MiB after an 8 MiB chunk, %d MiB after a 128 MiB chunk", small>>20, big>>20)
	if big-small > large/4 {
		t.Errorf("peak RSS grew by %d MiB with a 128 MiB chunk: chunks are held in memory", (big-small)>>20)
	}
}

// peakRSS reads VmHWM (peak resident set size) of a process, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// issuePublisher creates a publisher token through the REST API.
func issuePublisher(t *testing.T, base string) string {
	t.Helper()
	body := []byte(`{"name":"e2e-publisher","roles":["publisher"]}`)
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/tokens", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ociE2EToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("issue token: %s, %v", resp.Status, err)
	}
	return out.Token
}

// ociRequest sends one /v2/ request with Basic authentication (any user,
// the token as password), reads the body away and returns the response.
func ociRequest(t *testing.T, method, url, token string, body io.Reader, size int64, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.SetBasicAuth("e2e", token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
