package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
)

func runStore(t *testing.T, fresh func(*testing.T) store.Backend) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			alg       digest.Algorithm
			known     bool // digest given up front
			knownSize bool
			size      int64
		}{
			{"known digest", digest.SHA256, true, true, 5000},
			{"known digest, size unknown", digest.SHA256, true, false, 5000},
			{"digest computed", digest.SHA256, false, true, 5000},
			{"digest computed, size unknown", digest.SHA256, false, false, 5000},
			{"empty", digest.SHA256, true, true, 0},
			{"empty, digest computed", digest.SHA256, false, false, 0},
			{"sha512 known", digest.SHA512, true, true, 5000},
			{"sha512 computed", digest.SHA512, false, false, 5000},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := t.Context()
				b := fresh(t)
				s := store.New(b)
				want := BodyDigest(tc.alg, 7, tc.size)
				opts := store.IngestOptions{Size: -1, Algorithm: tc.alg}
				if tc.known {
					opts.Digest = want
				}
				if tc.knownSize {
					opts.Size = tc.size
				}
				blob, err := s.Ingest(ctx, Body(7, tc.size), opts)
				if err != nil {
					t.Fatalf("ingest: %v", err)
				}
				if blob != (store.Blob{Digest: want, Size: tc.size, Created: true}) {
					t.Errorf("ingest = %+v, want %s, %d bytes, created", blob, want, tc.size)
				}
				assertBlob(t, ctx, s, want, tc.size)
				if keys := listKeys(t, ctx, b, ""); len(keys) != 1 || keys[0] != store.BlobKey(want) {
					t.Errorf("keys = %v, want only %s", keys, store.BlobKey(want))
				}
			})
		}
	})

	t.Run("Rejected", func(t *testing.T) {
		for _, size := range failureSizes {
			good := BodyDigest(digest.SHA256, 1, size)
			other := BodyDigest(digest.SHA256, 2, size)
			shorter := BodyDigest(digest.SHA256, 1, size-1)
			for _, tc := range []struct {
				name string
				body io.Reader
				opts store.IngestOptions
				want error
			}{
				{"wrong digest", Body(1, size), store.IngestOptions{Digest: other, Size: size}, store.ErrDigestMismatch},
				{"wrong digest, size unknown", Body(1, size), store.IngestOptions{Digest: other, Size: -1}, store.ErrDigestMismatch},
				{"truncated body", Body(1, size), store.IngestOptions{Digest: good, Size: size + 1}, store.ErrSizeMismatch},
				{"truncated body, digest computed", Body(1, size), store.IngestOptions{Size: size + 1}, store.ErrSizeMismatch},
				{"overlong body", Body(1, size), store.IngestOptions{Digest: shorter, Size: size - 1}, store.ErrSizeMismatch},
				{"overlong body, digest computed", Body(1, size), store.IngestOptions{Size: size - 1}, store.ErrSizeMismatch},
				{"reader fails midway", FaultyReader(Body(1, size), size/2, false), store.IngestOptions{Digest: good, Size: size}, ErrReader},
				{"reader fails midway, digest computed", FaultyReader(Body(1, size), size/2, false), store.IngestOptions{Size: -1}, ErrReader},
				{"reader fails with the last byte", FaultyReader(Body(1, size), size, true), store.IngestOptions{Digest: good, Size: size}, ErrReader},
				{"reader fails with the last byte, size unknown", FaultyReader(Body(1, size), size, true), store.IngestOptions{Digest: good, Size: -1}, ErrReader},
				{"reader fails with the last byte, digest computed", FaultyReader(Body(1, size), size, true), store.IngestOptions{Size: -1}, ErrReader},
			} {
				t.Run(fmt.Sprintf("%s/%d", tc.name, size), func(t *testing.T) {
					ctx := t.Context()
					b := fresh(t)
					s := store.New(b)
					blob, err := s.Ingest(ctx, tc.body, tc.opts)
					if !errors.Is(err, tc.want) {
						t.Fatalf("ingest = %+v, %v; want %v", blob, err, tc.want)
					}
					for _, d := range []digest.Digest{good, other, shorter} {
						if ok, err := s.Exists(ctx, d); ok || err != nil {
							t.Errorf("exists %s = %v, %v after a rejected ingest", d, ok, err)
						}
					}
					assertEmpty(t, ctx, b)
				})
			}
		}
	})

	t.Run("InvalidDigest", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		for _, d := range []digest.Digest{"sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "nonsense"} {
			if _, err := s.Ingest(ctx, strings.NewReader("x"), store.IngestOptions{Digest: d, Size: 1}); !errors.Is(err, store.ErrInvalidDigest) {
				t.Errorf("ingest with %q: %v, want ErrInvalidDigest", d, err)
			}
			if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrInvalidDigest) {
				t.Errorf("stat %q: %v, want ErrInvalidDigest", d, err)
			}
		}
		assertEmpty(t, ctx, b)
	})

	t.Run("Missing", func(t *testing.T) {
		ctx := t.Context()
		s := store.New(fresh(t))
		d := BodyDigest(digest.SHA256, 99, 10)
		if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("stat: %v, want ErrNotFound", err)
		}
		if rc, err := s.Open(ctx, d, 0, -1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("open: %v, want ErrNotFound", err)
			if err == nil {
				rc.Close()
			}
		}
		if ok, err := s.Exists(ctx, d); ok || err != nil {
			t.Errorf("exists = %v, %v; want false, nil", ok, err)
		}
		if err := s.Delete(ctx, d); err != nil {
			t.Errorf("delete: %v", err)
		}
	})

	t.Run("Existing", func(t *testing.T) {
		ctx := t.Context()
		counting := &writeCounter{Backend: fresh(t)}
		s := store.New(counting)
		const size = 4000
		d := BodyDigest(digest.SHA256, 5, size)
		if _, err := s.Ingest(ctx, Body(5, size), store.IngestOptions{Digest: d, Size: size}); err != nil {
			t.Fatalf("first ingest: %v", err)
		}
		before := counting.writes.Load()
		for _, opts := range []store.IngestOptions{
			{Digest: d, Size: size},
			{Digest: d, Size: -1},
			{Size: size},
			{Size: -1},
		} {
			blob, err := s.Ingest(ctx, Body(5, size), opts)
			if err != nil {
				t.Fatalf("ingest again %+v: %v", opts, err)
			}
			if blob != (store.Blob{Digest: d, Size: size, Created: false}) {
				t.Errorf("ingest again %+v = %+v, want not created", opts, blob)
			}
		}
		if _, err := s.Ingest(ctx, Body(6, size), store.IngestOptions{Digest: d, Size: size}); !errors.Is(err, store.ErrDigestMismatch) {
			t.Errorf("wrong body for a stored digest: %v, want ErrDigestMismatch", err)
		}
		if _, err := s.Ingest(ctx, Body(5, size-1), store.IngestOptions{Digest: d, Size: -1}); !errors.Is(err, store.ErrDigestMismatch) {
			t.Errorf("truncated body for a stored digest: %v, want ErrDigestMismatch", err)
		}
		// Only the bodies whose digest is computed are written: to staging.
		if got := counting.writes.Load() - before; got != 2 {
			t.Errorf("%d writes for bodies already stored, want only the 2 staging puts", got)
		}
		if keys := listKeys(t, ctx, counting, ""); len(keys) != 1 || keys[0] != store.BlobKey(d) {
			t.Errorf("keys = %v, want only %s", keys, store.BlobKey(d))
		}
		assertBlob(t, ctx, s, d, size)
	})

	t.Run("Concurrent", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		// Above 1 MiB, so an S3 backend uploads the bodies whose size is
		// unknown in parts.
		const size = 1<<20 + 1
		d := BodyDigest(digest.SHA256, 8, size)
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Go(func() {
				opts := store.IngestOptions{Digest: d, Size: size}
				if i%2 == 1 {
					opts = store.IngestOptions{Size: -1}
				}
				blob, err := s.Ingest(ctx, Body(8, size), opts)
				if err == nil && (blob.Digest != d || blob.Size != size) {
					err = fmt.Errorf("ingest = %+v", blob)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("pusher %d: %v", i, err)
			}
		}
		if keys := listKeys(t, ctx, b, ""); len(keys) != 1 || keys[0] != store.BlobKey(d) {
			t.Errorf("keys = %v, want only %s", keys, store.BlobKey(d))
		}
		assertBlob(t, ctx, s, d, size)
	})

	t.Run("Large", func(t *testing.T) {
		for _, known := range []bool{true, false} {
			t.Run(fmt.Sprintf("known digest %v", known), func(t *testing.T) {
				ctx := t.Context()
				s := store.New(fresh(t))
				seed := uint64(10)
				if !known {
					seed = 11
				}
				d := BodyDigest(digest.SHA256, seed, largeSize)
				opts := store.IngestOptions{Size: -1}
				if known {
					opts = store.IngestOptions{Digest: d, Size: largeSize}
				}
				blob, err := s.Ingest(ctx, Body(seed, largeSize), opts)
				if err != nil {
					t.Fatalf("ingest: %v", err)
				}
				if blob.Digest != d || blob.Size != largeSize || !blob.Created {
					t.Errorf("ingest = %+v, want %s, %d bytes, created", blob, d, largeSize)
				}
				assertBlob(t, ctx, s, d, largeSize)
			})
		}
	})

	t.Run("Range", func(t *testing.T) {
		ctx := t.Context()
		s := store.New(fresh(t))
		data := BodyBytes(12, 1000)
		blob, err := s.Ingest(ctx, bytes.NewReader(data), store.IngestOptions{Size: int64(len(data))})
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
		for _, tc := range []struct {
			offset, length int64
			want           []byte
			err            error
		}{
			{0, -1, data, nil},
			{0, 100, data[:100], nil},
			{500, -1, data[500:], nil},
			{500, 10, data[500:510], nil},
			{900, 500, data[900:], nil},
			{1000, -1, nil, nil},
			{1000, 10, nil, nil},
			{1001, -1, nil, store.ErrInvalidRange},
			{-1, -1, nil, store.ErrInvalidRange},
		} {
			rc, err := s.Open(ctx, blob.Digest, tc.offset, tc.length)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("open [%d,%d]: %v, want %v", tc.offset, tc.length, err, tc.err)
				}
				if err == nil {
					rc.Close()
				}
				continue
			}
			if err != nil {
				t.Errorf("open [%d,%d]: %v", tc.offset, tc.length, err)
				continue
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("open [%d,%d]: %d bytes (%v), want %d", tc.offset, tc.length, len(got), err, len(tc.want))
			}
		}
	})

	t.Run("ReadSeeker", func(t *testing.T) {
		ctx := t.Context()
		s := store.New(fresh(t))
		const size = 10_000
		data := BodyBytes(13, size)
		blob, err := s.Ingest(ctx, bytes.NewReader(data), store.IngestOptions{Size: size})
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
		for _, tc := range []struct {
			rangeHeader string
			status      int
			want        [][]byte // one per part
		}{
			{"", http.StatusOK, [][]byte{data}},
			{"bytes=0-99", http.StatusPartialContent, [][]byte{data[:100]}},
			{"bytes=9000-", http.StatusPartialContent, [][]byte{data[9000:]}},
			{"bytes=-100", http.StatusPartialContent, [][]byte{data[size-100:]}},
			{"bytes=0-0,5000-5009", http.StatusPartialContent, [][]byte{data[:1], data[5000:5010]}},
			{"bytes=20000-", http.StatusRequestedRangeNotSatisfiable, nil},
		} {
			// ServeContent seeks to the end for the size, reads the start to
			// sniff the content type, and seeks back to each range; opened
			// at once (as servers do) or at the first Read, the reader must
			// follow.
			for _, opened := range []bool{false, true} {
				rs := s.ReadSeeker(ctx, blob.Digest, blob.Size)
				if opened {
					if rs, err = s.OpenReadSeeker(ctx, blob.Digest, blob.Size); err != nil {
						t.Fatalf("open: %v", err)
					}
				}
				req := httptest.NewRequest(http.MethodGet, "/blob", nil)
				if tc.rangeHeader != "" {
					req.Header.Set("Range", tc.rangeHeader)
				}
				rec := httptest.NewRecorder()
				http.ServeContent(rec, req, "", time.Time{}, rs)
				if err := rs.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
				if rec.Code != tc.status {
					t.Errorf("range %q (opened %v): status %d, want %d", tc.rangeHeader, opened, rec.Code, tc.status)
					continue
				}
				if tc.want == nil {
					continue
				}
				if got := responseParts(t, rec); !equalParts(got, tc.want) {
					t.Errorf("range %q (opened %v): wrong body (%d parts)", tc.rangeHeader, opened, len(got))
				}
			}
		}
		// Opening reaches the backend: a missing blob fails before any Read.
		missing := digest.FromString("never stored")
		if _, err := s.OpenReadSeeker(ctx, missing, 12); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("open a missing blob: %v, want ErrNotFound", err)
		}

		rs := s.ReadSeeker(ctx, blob.Digest, blob.Size)
		defer rs.Close()
		buf := make([]byte, 10)
		for _, step := range []struct {
			offset int64
			whence int
			pos    int64
		}{
			{-10, io.SeekEnd, size - 10},
			{100, io.SeekStart, 100},
			{-50, io.SeekCurrent, 60}, // after reading 10 bytes at 100
		} {
			pos, err := rs.Seek(step.offset, step.whence)
			if err != nil || pos != step.pos {
				t.Fatalf("seek(%d, %d) = %d, %v; want %d", step.offset, step.whence, pos, err, step.pos)
			}
			if _, err := io.ReadFull(rs, buf); err != nil {
				t.Fatalf("read at %d: %v", pos, err)
			}
			if !bytes.Equal(buf, data[pos:pos+10]) {
				t.Errorf("read at %d: wrong bytes", pos)
			}
		}
		if _, err := rs.Seek(size, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if n, err := rs.Read(buf); n != 0 || err != io.EOF {
			t.Errorf("read at the end = %d, %v; want 0, EOF", n, err)
		}
		if _, err := rs.Seek(-1, io.SeekStart); !errors.Is(err, store.ErrInvalidRange) {
			t.Errorf("seek before the start: %v, want ErrInvalidRange", err)
		}
	})

	t.Run("CleanStaging", func(t *testing.T) {
		ctx := t.Context()
		b := fresh(t)
		s := store.New(b)
		blob, err := s.Ingest(ctx, Body(14, 3000), store.IngestOptions{Size: -1})
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
		// What a crash between staging and commit leaves behind.
		put(t, ctx, b, "uploads/left-by-a-crash", []byte("partial"))

		if n, err := s.CleanStaging(ctx, time.Hour); err != nil || n != 0 {
			t.Errorf("clean staging older than an hour = %d, %v; want 0, nil", n, err)
		}
		if _, err := b.Stat(ctx, "uploads/left-by-a-crash"); err != nil {
			t.Errorf("a fresh staging key was removed: %v", err)
		}
		// Objects on a real server cannot be aged, so move the cutoff
		// instead: everything written before an hour from now is stale.
		if n, err := s.CleanStaging(ctx, -time.Hour); err != nil || n != 1 {
			t.Errorf("clean staging = %d, %v; want 1, nil", n, err)
		}
		if keys := listKeys(t, ctx, b, ""); len(keys) != 1 || keys[0] != store.BlobKey(blob.Digest) {
			t.Errorf("keys after cleaning = %v, want only the blob", keys)
		}
	})
}

// assertBlob checks that d is stored with the given size and content.
func assertBlob(t testing.TB, ctx context.Context, s *store.Store, d digest.Digest, size int64) {
	t.Helper()
	got, err := s.Stat(ctx, d)
	if err != nil || got != size {
		t.Fatalf("stat %s = %d, %v; want %d", d, got, err, size)
	}
	rc, err := s.Open(ctx, d, 0, -1)
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	defer rc.Close()
	if read, n := ReadDigest(t, d.Algorithm(), rc); read != d || n != size {
		t.Errorf("read back %d bytes hashing to %s, want %d bytes of %s", n, read, size, d)
	}
}

// writeCounter counts the writes that reach a backend.
type writeCounter struct {
	store.Backend
	writes atomic.Int64
}

func (w *writeCounter) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	w.writes.Add(1)
	return w.Backend.Put(ctx, key, r, size)
}

func (w *writeCounter) Move(ctx context.Context, src, dst string) error {
	w.writes.Add(1)
	return w.Backend.Move(ctx, src, dst)
}

// responseParts returns the body of a response, split into its parts when
// it is multipart/byteranges.
func responseParts(t testing.TB, rec *httptest.ResponseRecorder) [][]byte {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil || mediaType != "multipart/byteranges" {
		return [][]byte{rec.Body.Bytes()}
	}
	var parts [][]byte
	mr := multipart.NewReader(rec.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatalf("multipart response: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("multipart response: %v", err)
		}
		parts = append(parts, data)
	}
}

func equalParts(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
