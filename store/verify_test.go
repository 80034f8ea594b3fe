package store_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/storetest"
)

func TestVerifyingReader(t *testing.T) {
	body := []byte("the body")
	good := digest.FromBytes(body)
	other := digest.FromString("another body")
	n := int64(len(body))
	for _, tc := range []struct {
		name     string
		r        io.Reader
		expected digest.Digest
		size     int64
		max      int64
		want     error // nil: verified
	}{
		{"matches", bytes.NewReader(body), good, n, -1, nil},
		{"matches, size unknown", bytes.NewReader(body), good, -1, -1, nil},
		{"hash only", bytes.NewReader(body), "", -1, -1, nil},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(body)), good, n, -1, nil},
		{"wrong digest", bytes.NewReader(body), other, n, -1, store.ErrDigestMismatch},
		{"wrong digest, size unknown", bytes.NewReader(body), other, -1, -1, store.ErrDigestMismatch},
		{"shorter than declared", bytes.NewReader(body), good, n + 1, -1, store.ErrSizeMismatch},
		{"longer than declared", bytes.NewReader(body), good, n - 1, -1, store.ErrSizeMismatch},
		{"over the limit", bytes.NewReader(body), good, -1, n - 1, store.ErrTooLarge},
		{"reader fails", storetest.FaultyReader(bytes.NewReader(body), 3, false), good, n, -1, storetest.ErrReader},
		{"reader fails with the last byte", storetest.FaultyReader(bytes.NewReader(body), n, true), good, n, -1, storetest.ErrReader},
		{"reader fails with the last byte, size unknown", storetest.FaultyReader(bytes.NewReader(body), n, true), good, -1, -1, storetest.ErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vr := store.NewVerifyingReader(tc.r, tc.expected, tc.size, tc.max)
			got, err := io.ReadAll(vr)
			if !errors.Is(err, tc.want) || !errors.Is(vr.Err(), tc.want) {
				t.Fatalf("read: %v (Err %v), want %v", err, vr.Err(), tc.want)
			}
			if tc.want != nil {
				// Sticky: a caller that dropped the error must not see EOF next.
				if _, err := vr.Read(make([]byte, 10)); !errors.Is(err, tc.want) {
					t.Errorf("read after the failure: %v, want %v", err, tc.want)
				}
				return
			}
			if !bytes.Equal(got, body) || !vr.Verified() || vr.Count() != n || vr.Digest() != good {
				t.Errorf("got %q, verified %v, count %d, digest %s", got, vr.Verified(), vr.Count(), vr.Digest())
			}
		})
	}
}

// The check must happen on the Read that delivers the last declared byte:
// HTTP servers stop at Content-Length and never ask for EOF.
func TestVerifyingReaderChecksAtTheLastByte(t *testing.T) {
	body := "exactly this"
	vr := store.NewVerifyingReader(strings.NewReader(body+" and more"), digest.FromString(body), int64(len(body)), -1)
	buf := make([]byte, len(body))
	n, err := vr.Read(buf)
	if n != len(body) || err != io.EOF || !vr.Verified() {
		t.Errorf("read = %d, %v, verified %v; want %d, EOF, true", n, err, vr.Verified(), len(body))
	}
}

func TestKeys(t *testing.T) {
	d := digest.FromString("x")
	key := store.BlobKey(d)
	if want := "blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded(); key != want {
		t.Errorf("BlobKey = %s, want %s", key, want)
	}
	for _, tc := range []struct {
		key           string
		blob, staging bool
	}{
		{key, true, false},
		{"blobsmith/x", false, false},
		{"uploads/123", false, true},
		{"uploadsx", false, false},
	} {
		if got := store.IsBlobKey(tc.key); got != tc.blob {
			t.Errorf("IsBlobKey(%q) = %v", tc.key, got)
		}
		if got := store.StagingKey(tc.key); got != tc.staging {
			t.Errorf("StagingKey(%q) = %v", tc.key, got)
		}
	}
}
