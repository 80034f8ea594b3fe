package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/dmlproject/dml/store/s3/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// storage is a real blob backend that the integrity tests damage behind
// the server's back: get and put read and replace one stored object
// directly (fs: the file, rewritten in place; S3: the object, with a new
// PUT), remove deletes it and age makes it look old (fs only).
type storage struct {
	backend store.Backend
	get     func(t *testing.T, key string) []byte
	put     func(t *testing.T, key string, b []byte)
	remove  func(t *testing.T, key string)
	// age sets the modification time of key, or is nil where the backend
	// cannot be told (S3 sets LastModified itself).
	age func(t *testing.T, key string, mtime time.Time)
}

// storages are the backends every integrity test runs on. The S3 one is a
// fresh bucket on the versitygw server the test script starts (skipped
// without DML_TEST_S3_ENDPOINT, failing in CI).
var storages = []struct {
	name string
	open func(t *testing.T) storage
}{
	{"fs", fsStorage},
	{"s3", s3Storage},
}

func fsStorage(t *testing.T) storage {
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	path := func(key string) string { return filepath.Join(b.Root(), filepath.FromSlash(key)) }
	return storage{
		backend: b,
		get: func(t *testing.T, key string) []byte {
			t.Helper()
			data, err := os.ReadFile(path(key))
			if err != nil {
				t.Fatal(err)
			}
			return data
		},
		put: func(t *testing.T, key string, data []byte) {
			t.Helper()
			// In place: the same file, as a disk error or a careless
			// operator would change it.
			if err := os.WriteFile(path(key), data, 0o640); err != nil {
				t.Fatal(err)
			}
		},
		remove: func(t *testing.T, key string) {
			t.Helper()
			if err := os.Remove(path(key)); err != nil {
				t.Fatal(err)
			}
		},
		age: func(t *testing.T, key string, mtime time.Time) {
			t.Helper()
			if err := os.Chtimes(path(key), mtime, mtime); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func s3Storage(t *testing.T) storage {
	b := s3test.NewBackend(t, nil)
	client := s3test.Client(t)
	ctx := context.Background()
	return storage{
		backend: b,
		get: func(t *testing.T, key string) []byte {
			t.Helper()
			obj, err := client.GetObject(ctx, b.Bucket(), b.Prefix()+key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			data, err := io.ReadAll(obj)
			if err != nil {
				t.Fatal(err)
			}
			return data
		},
		put: func(t *testing.T, key string, data []byte) {
			t.Helper()
			if _, err := client.PutObject(ctx, b.Bucket(), b.Prefix()+key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		remove: func(t *testing.T, key string) {
			t.Helper()
			if err := client.RemoveObject(ctx, b.Bucket(), b.Prefix()+key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// faultyReads wraps a backend so that reads of chosen keys return altered
// bytes while the stored object stays as it is: a disk that rots or a
// connection that ends early, which no Stat can see.
type faultyReads struct {
	store.Backend
	mu     sync.Mutex
	faults map[string]func([]byte) []byte
}

func (f *faultyReads) set(key string, fault func([]byte) []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults == nil {
		f.faults = map[string]func([]byte) []byte{}
	}
	if fault == nil {
		delete(f.faults, key)
		return
	}
	f.faults[key] = fault
}

func (f *faultyReads) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	f.mu.Lock()
	fault := f.faults[key]
	f.mu.Unlock()
	if fault == nil {
		return f.Backend.Get(ctx, key, offset, length)
	}
	rc, err := f.Backend.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	data = fault(data)
	data = data[min(offset, int64(len(data))):]
	if length >= 0 {
		data = data[:min(length, int64(len(data)))]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func flipByte(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0x01
	return c
}

func truncateHalf(b []byte) []byte { return bytes.Clone(b[:len(b)/2]) }

// logBuffer collects what the server logs, as text lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// transfer is what a client got from one request: the status, the
// headers, every body byte that arrived and the error that ended reading
// (nil when the body arrived whole).
type transfer struct {
	status  int
	header  http.Header
	body    []byte
	readErr error
}

// errorCode is the first error code of a JSON error body, or "".
func (tr transfer) errorCode() string {
	var eb errorView
	if json.Unmarshal(tr.body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

// download sends one request with the token and "Key", "value" header
// pairs, and reads the whole answer.
func download(t *testing.T, method, url, token string, headers ...string) transfer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// A transport of its own: a connection the server breaks must not be
	// offered to the next request.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(resp.Body)
	return transfer{status: resp.StatusCode, header: resp.Header, body: body, readErr: readErr}
}

// wantCorrupt fails the test unless the answer is 500 BLOB_CORRUPT.
func wantCorrupt(t *testing.T, what string, tr transfer) {
	t.Helper()
	if tr.status != http.StatusInternalServerError || tr.errorCode() != "BLOB_CORRUPT" {
		t.Fatalf("%s: %d %q (read error %v); want 500 BLOB_CORRUPT", what, tr.status, truncateForLog(tr.body), tr.readErr)
	}
}

func truncateForLog(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// auditActions returns the "action subject" of every audit record.
func auditActions(t *testing.T, url, token string) []string {
	t.Helper()
	tr := download(t, http.MethodGet, url+"/api/v1/audit/entries?start=0&limit=100000", token)
	if tr.status != http.StatusOK || tr.readErr != nil {
		t.Fatalf("audit entries: %d %v", tr.status, tr.readErr)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(tr.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Action  string `json:"action"`
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit record %q: %v", sc.Text(), err)
		}
		out = append(out, rec.Action+" "+rec.Subject)
	}
	return out
}

// metric returns the value of one sample line of /metrics, or "" when the
// server does not expose it.
func metric(t *testing.T, url, sample string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// integrityEnv is a server over a real backend (possibly wrapped to fail
// reads) with payments/api:1.4.2 admitted, its log recorded.
type integrityEnv struct {
	*relEnv
	st     storage
	faults *faultyReads
	logs   *logBuffer
}

func newIntegrityEnv(t *testing.T, st storage) *integrityEnv {
	t.Helper()
	faults := &faultyReads{Backend: st.backend}
	logs := &logBuffer{}
	e := newRelEnv(t, true, testserver.WithBackend(faults), testserver.WithLogger(logs.logger()))
	return &integrityEnv{relEnv: e, st: st, faults: faults, logs: logs}
}

// blobKey is where the backend keeps d.
func blobKey(d digest.Digest) string { return store.BlobKey(d) }
