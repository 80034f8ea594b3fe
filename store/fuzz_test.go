package store_test

import (
	"bytes"
	"context"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/opencontainers/go-digest"
)

// FuzzValidateDigest: a digest that validates is canonical, of a
// supported algorithm, and its blob key stays inside blobs/.
func FuzzValidateDigest(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d := digest.Digest(s)
		if err := store.ValidateDigest(d); err != nil {
			return
		}
		parsed, err := digest.Parse(s)
		if err != nil || parsed.String() != s {
			t.Fatalf("%q validates but parses as %q, %v", s, parsed, err)
		}
		if alg := d.Algorithm(); alg != digest.SHA256 && alg != digest.SHA512 {
			t.Fatalf("%q validates with algorithm %q", s, alg)
		}
		key := store.BlobKey(d)
		if path.Clean(key) != key || !strings.HasPrefix(key, "blobs/") || strings.Contains(key, "..") || !store.IsBlobKey(key) {
			t.Fatalf("%q has the blob key %q", s, key)
		}
	})
}

// FuzzReadSeeker drives a stored blob's ReadSeeker with any sequence of
// seeks and reads and compares every answer with bytes.Reader over the
// same bytes: the positions, the bytes and where EOF comes must agree.
func FuzzReadSeeker(f *testing.F) {
	backend, err := fs.New(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	st := store.New(backend)
	content := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	b, err := st.Ingest(context.Background(), bytes.NewReader(content), store.IngestOptions{Size: int64(len(content))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		rs := st.ReadSeeker(context.Background(), b.Digest, b.Size)
		defer rs.Close()
		model := bytes.NewReader(content)
		// Each op is three bytes: kind, and a signed 16-bit argument.
		for i := 0; i+3 <= len(ops) && i < 3*64; i += 3 {
			arg := int64(int16(uint16(ops[i+1])<<8 | uint16(ops[i+2])))
			switch ops[i] % 4 {
			case 0, 1, 2: // seek from start, current, end
				got, gotErr := rs.Seek(arg, int(ops[i]%4))
				want, wantErr := model.Seek(arg, int(ops[i]%4))
				if (gotErr != nil) != (wantErr != nil) || (gotErr == nil && got != want) {
					t.Fatalf("op %d: Seek(%d, %d) = %d, %v; want %d, %v", i/3, arg, ops[i]%4, got, gotErr, want, wantErr)
				}
			case 3: // read up to |arg| bytes
				n := arg
				if n < 0 {
					n = -n
				}
				got := make([]byte, n)
				want := make([]byte, n)
				gn, gotErr := io.ReadFull(rs, got)
				wn, wantErr := io.ReadFull(model, want)
				if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("op %d: read %d = %d bytes, %v; want %d, %v", i/3, n, gn, gotErr, wn, wantErr)
				}
			}
		}
	})
}
