package s3_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/dmlproject/dml/store/s3"
	"github.com/dmlproject/dml/store/s3/s3test"
)

// A large read goes as ranged GETs in flight at once: whatever the span
// (the whole object, from an offset, a bounded range, ranges that end
// mid-range or on a boundary), the bytes are the object's, in order.
func TestRangedReads(t *testing.T) {
	ctx := t.Context()
	b := s3test.NewBackend(t, nil)
	const rangeSize = 256 << 10
	s3.SetReadRanges(b, rangeSize, 3)
	body := make([]byte, 5<<20+123)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "blobs/big", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	size := int64(len(body))
	for _, tc := range []struct {
		name           string
		offset, length int64
	}{
		{"whole", 0, -1},
		{"from an offset", 1000, -1},
		{"from a range boundary", rangeSize, -1},
		{"bounded", 77, 3<<20 + 5},
		{"to the last byte", 5, size - 5},
		{"small: one GET", 10, rangeSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := b.Get(ctx, "blobs/big", tc.offset, tc.length)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			end := size
			if tc.length >= 0 {
				end = tc.offset + tc.length
			}
			if err != nil || !bytes.Equal(got, body[tc.offset:end]) {
				t.Fatalf("read %d bytes (want %d), equal %v: %v", len(got), end-tc.offset, bytes.Equal(got, body[tc.offset:end]), err)
			}
		})
	}

	// A reader closed half-way stops its GETs; one whose object is
	// replaced under it fails rather than mix two objects' bytes.
	rc, err := b.Get(ctx, "blobs/big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, rangeSize/2)); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{'x'}, len(body))
	if err := b.Put(ctx, "blobs/big", bytes.NewReader(other), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	rc.Close()
	if err == nil {
		t.Fatalf("read on after the object was replaced: %d bytes, no error", len(rest))
	}
	if bytes.Contains(rest, []byte("xxxxxxxx")) {
		t.Fatal("the bytes of the new object were mixed into the read of the old one")
	}
}
