package storetest

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
)

// runIntegrity checks what the store offers for stored bytes that went
// bad after they were written: damage is done through the backend itself
// (a Put over the blob's key), as a faulty disk or a careless operator
// would, and must never be read back as valid.
func runIntegrity(t *testing.T, fresh func(*testing.T) store.Backend) {
	const size = 70_000
	body := BodyBytes(11, size)
	d := digest.FromBytes(body)
	flipped := bytes.Clone(body)
	flipped[size-1] ^= 0x01
	damages := []struct {
		name string
		data []byte
	}{
		{"flipped", flipped},
		{"truncated", body[:size/2]},
		{"longer", append(bytes.Clone(body), 'x')},
	}
	// stored is a store holding body under d, and its backend.
	stored := func(t *testing.T) (*store.Store, store.Backend) {
		b := fresh(t)
		s := store.New(b)
		if _, err := s.Ingest(t.Context(), bytes.NewReader(body), store.IngestOptions{Digest: d, Size: size}); err != nil {
			t.Fatalf("ingest: %v", err)
		}
		return s, b
	}
	damage := func(t *testing.T, b store.Backend, data []byte) {
		if err := b.Put(t.Context(), store.BlobKey(d), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("damage: %v", err)
		}
	}

	t.Run("FingerprintChangesOnWrite", func(t *testing.T) {
		s, b := stored(t)
		before, err := s.StatBlob(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.StatBlob(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		if before.Fingerprint() != again.Fingerprint() {
			t.Fatalf("two Stats of an untouched object: %s, then %s", before.Fingerprint(), again.Fingerprint())
		}
		damage(t, b, flipped) // same size, written at once
		after, err := s.StatBlob(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		if before.Fingerprint() == after.Fingerprint() {
			t.Fatalf("the object was rewritten with other bytes of the same size, and its fingerprint %s did not change", after.Fingerprint())
		}
	})

	t.Run("Verify", func(t *testing.T) {
		s, b := stored(t)
		info, err := s.Verify(t.Context(), d, size)
		if err != nil || info.Size != size {
			t.Fatalf("verify a healthy blob: %+v, %v", info, err)
		}
		if _, err := s.Verify(t.Context(), d, size+1); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("verify against another size: %v, want ErrCorrupt", err)
		}
		for _, dmg := range damages {
			damage(t, b, dmg.data)
			if _, err := s.Verify(t.Context(), d, -1); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("verify %s: %v, want ErrCorrupt", dmg.name, err)
			}
		}
		missing := BodyDigest(digest.SHA256, 12, 10)
		if _, err := s.Verify(t.Context(), missing, -1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("verify a missing blob: %v, want ErrNotFound", err)
		}
	})

	t.Run("FullReadsVerify", func(t *testing.T) {
		for _, dmg := range damages {
			t.Run(dmg.name, func(t *testing.T) {
				s, b := stored(t)
				damage(t, b, dmg.data)
				rs := s.ReadSeeker(t.Context(), d, size)
				defer rs.Close()
				got, err := io.ReadAll(rs)
				if !errors.Is(err, store.ErrCorrupt) {
					t.Fatalf("read all of a %s blob: %d bytes, %v; want ErrCorrupt", dmg.name, len(got), err)
				}
				if errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeMismatch) {
					t.Errorf("the error %v also blames a body being written", err)
				}
				if len(got) >= size && bytes.Equal(got[:size-1], body[:size-1]) {
					t.Errorf("the read delivered %d bytes before failing: the last byte went out", len(got))
				}
				if rs.Verified() {
					t.Error("Verified() after a failed read")
				}
			})
		}
		s, _ := stored(t)
		rs := s.ReadSeeker(t.Context(), d, size)
		defer rs.Close()
		if got, err := io.ReadAll(rs); err != nil || !bytes.Equal(got, body) || !rs.Verified() {
			t.Fatalf("read all of a healthy blob: %d bytes, %v, verified %v", len(got), err, rs.Verified())
		}
	})

	t.Run("IngestReplaces", func(t *testing.T) {
		s, b := stored(t)
		damage(t, b, flipped)
		keep := func(digest.Digest) (bool, error) { return false, nil }
		blob, err := s.Ingest(t.Context(), bytes.NewReader(body), store.IngestOptions{Digest: d, Size: size, Replace: keep})
		if err != nil || blob.Created {
			t.Fatalf("ingest keeping the stored copy: %+v, %v", blob, err)
		}
		if got := get(t, t.Context(), b, store.BlobKey(d), 0, -1); !bytes.Equal(got, flipped) {
			t.Fatal("a kept copy was written")
		}
		var asked []digest.Digest
		replace := func(got digest.Digest) (bool, error) { asked = append(asked, got); return true, nil }
		// A body that does not verify replaces nothing.
		if _, err := s.Ingest(t.Context(), bytes.NewReader(flipped), store.IngestOptions{Digest: d, Size: size, Replace: replace}); !errors.Is(err, store.ErrDigestMismatch) {
			t.Fatalf("replacing with a wrong body: %v", err)
		}
		if got := get(t, t.Context(), b, store.BlobKey(d), 0, -1); !bytes.Equal(got, flipped) {
			t.Fatal("a body that failed verification replaced the stored copy")
		}
		for _, opts := range []store.IngestOptions{
			{Digest: d, Size: size, Replace: replace},
			{Size: -1, Replace: replace},
		} {
			damage(t, b, flipped)
			blob, err := s.Ingest(t.Context(), bytes.NewReader(body), opts)
			if err != nil || !blob.Created || blob.Digest != d {
				t.Fatalf("ingest replacing the stored copy (%+v): %+v, %v", opts, blob, err)
			}
			if got := get(t, t.Context(), b, store.BlobKey(d), 0, -1); !bytes.Equal(got, body) {
				t.Fatal("the stored copy was not replaced")
			}
		}
		if !slices.Equal(asked, []digest.Digest{d, d, d}) {
			t.Errorf("Replace was asked about %v", asked)
		}
	})

	t.Run("ListBlobs", func(t *testing.T) {
		s, b := stored(t)
		other := BodyBytes(13, 100)
		od, err := s.Ingest(t.Context(), bytes.NewReader(other), store.IngestOptions{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put(t.Context(), "blobs/sha256/zz/stray", bytes.NewReader([]byte("?")), 1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutChunk(t.Context(), "up1", store.ChunkPos{}, bytes.NewReader([]byte("chunk")), 5, -1); err != nil {
			t.Fatal(err)
		}
		got := map[string]digest.Digest{}
		if err := s.ListBlobs(t.Context(), func(sb store.StoredBlob) error {
			got[sb.Key] = sb.Digest
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := map[string]digest.Digest{store.BlobKey(d): d, store.BlobKey(od.Digest): od.Digest, "blobs/sha256/zz/stray": ""}
		if len(got) != len(want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("listed %s as %q, want %q", k, got[k], v)
			}
		}
		var staging []store.StagingObject
		if err := s.ListStaging(t.Context(), func(o store.StagingObject) error {
			staging = append(staging, o)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		chunk := store.ChunkKey("up1", 0) // chunk 0
		if s.AppendsChunks() {
			chunk = store.ChunkKey("up1", 1) // the upload after one chunk
		}
		if len(staging) != 1 || staging[0].UploadID != "up1" || staging[0].Key != chunk {
			t.Fatalf("staging listed %+v", staging)
		}
		if err := s.DeleteStaging(t.Context(), staging[0].Key); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteStaging(t.Context(), store.BlobKey(d)); err == nil {
			t.Error("DeleteStaging removed a blob")
		}
	})
}
