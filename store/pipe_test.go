package store_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/storetest"
)

// Copy delivers exactly the bytes read, in order, across many buffers;
// stops at n; passes the reader's error on after the bytes before it.
func TestCopy(t *testing.T) {
	body := randomBytes(t, 3*store.CopyBufferSize+12345)
	for _, tc := range []struct {
		name string
		src  io.Reader
		n    int64
		want []byte
		err  error
	}{
		{"whole", bytes.NewReader(body), -1, body, nil},
		{"small reads", iotest.HalfReader(bytes.NewReader(body)), -1, body, nil},
		{"limited", bytes.NewReader(body), store.CopyBufferSize + 7, body[:store.CopyBufferSize+7], nil},
		{"nothing", bytes.NewReader(body), 0, nil, nil},
		{"reader fails", storetest.FaultyReader(bytes.NewReader(body), 2*store.CopyBufferSize+5, false), -1, body[:2*store.CopyBufferSize+5], storetest.ErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			n, err := store.Copy(onlyWrite{&got}, tc.src, tc.n)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("Copy: %v; want %v", err, tc.err)
			}
			if n != int64(len(tc.want)) || !bytes.Equal(got.Bytes(), tc.want) {
				t.Errorf("Copy wrote %d bytes (returned %d); want the %d read", got.Len(), n, len(tc.want))
			}
		})
	}
}

// When the writer fails, Copy returns its error and no longer reads: the
// reader (a request body) is not touched after Copy returns.
func TestCopyStopsReadingWhenTheWriterFails(t *testing.T) {
	src := &countingReader{r: bytes.NewReader(randomBytes(t, 20*store.CopyBufferSize))}
	failed := errors.New("disk full")
	_, err := store.Copy(failingWriter{failed}, src, -1)
	if !errors.Is(err, failed) {
		t.Fatalf("Copy: %v; want the writer's error", err)
	}
	// The buffers in flight, and the one the reader may have started.
	if src.n > 4*store.CopyBufferSize {
		t.Errorf("read %d bytes although the first write failed; want at most the buffers in flight", src.n)
	}
}

// A whole read of a blob larger than the copy's buffers through WriteTo
// (how io.Copy reads it) delivers every byte and verifies; a read from an
// offset (a Range) delivers the rest; a blob whose last byte was flipped
// is never delivered whole, and the failure says it is corrupt.
func TestReadSeekerWriteTo(t *testing.T) {
	ctx := t.Context()
	b := openFS(t)
	s := store.New(b)
	body := randomBytes(t, 3*store.CopyBufferSize+999)
	d := digest.FromBytes(body)
	if _, err := s.Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Digest: d, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	read := func(offset int64) ([]byte, *store.ReadSeeker, error) {
		r, err := s.OpenReadSeeker(ctx, d, int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Seek(offset, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		_, err = io.Copy(onlyWrite{&got}, r)
		return got.Bytes(), r, err
	}
	got, r, err := read(0)
	if err != nil || !bytes.Equal(got, body) || !r.Verified() {
		t.Fatalf("whole read: %d bytes, verified %v, %v", len(got), r.Verified(), err)
	}
	got, _, err = read(store.CopyBufferSize + 3)
	if err != nil || !bytes.Equal(got, body[store.CopyBufferSize+3:]) {
		t.Fatalf("read from an offset: %d bytes, %v", len(got), err)
	}

	file := filepath.Join(b.Root(), filepath.FromSlash(store.BlobKey(d)))
	flipped := bytes.Clone(body)
	flipped[len(flipped)-1] ^= 1
	if err := os.WriteFile(file, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	got, r, err = read(0)
	if !errors.Is(err, store.ErrCorrupt) || r.Verified() {
		t.Fatalf("read of a flipped blob: %v, verified %v; want ErrCorrupt", err, r.Verified())
	}
	if len(got) >= len(body) {
		t.Fatalf("read of a flipped blob delivered %d of %d bytes", len(got), len(body))
	}
}

// An ingest of a body whose digest is not known up front on fs writes the
// body once, where no key names it, and gives it its key: no staging
// object to delete afterwards, and nothing left behind either way.
func TestIngestStagedAside(t *testing.T) {
	ctx := t.Context()
	b := openFS(t)
	s := store.New(b)
	l := observeStore(s)
	body := randomBytes(t, store.CopyBufferSize+1)
	for range 2 { // written, then found stored
		blob, err := s.Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Size: -1})
		if err != nil || blob.Digest != digest.FromBytes(body) {
			t.Fatalf("ingest: %+v, %v", blob, err)
		}
	}
	if _, err := s.Ingest(ctx, storetest.FaultyReader(bytes.NewReader(body), 100, false), store.IngestOptions{Size: -1}); !errors.Is(err, storetest.ErrReader) {
		t.Fatalf("ingest of a failing body: %v", err)
	}
	l.mu.Lock()
	if l.ops[store.OpDelete] != 0 {
		t.Errorf("operations = %v; want no delete: the body is never written under a staging key", l.ops)
	}
	l.mu.Unlock()
	var left []string
	for _, dir := range []string{"_tmp", "uploads"} {
		entries, _ := os.ReadDir(filepath.Join(b.Root(), dir))
		for _, e := range entries {
			left = append(left, dir+"/"+e.Name())
		}
	}
	if len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

type onlyWrite struct{ io.Writer }

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
