package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/store"
)

// BenchSize is the size of the blob the stream benchmarks write and read.
const BenchSize = 64 << 20

// Bench runs the stream benchmarks of a blob store over the backend open
// returns (one for all of them): Ingest of a body whose digest is known
// and of one whose digest is not, and a verified read of a whole blob,
// copied as a server copies it to a client (io.Copy to a writer that
// offers nothing but Write). Compare runs with benchstat.
func Bench(b *testing.B, open func(testing.TB) store.Backend) {
	body := make([]byte, BenchSize)
	if _, err := rand.Read(body); err != nil {
		b.Fatal(err)
	}
	s := store.New(open(b))
	ctx := b.Context()
	for _, known := range []bool{true, false} {
		name := "ingest/digest-known"
		if !known {
			name = "ingest/digest-unknown"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(BenchSize)
			for i := 0; b.Loop(); i++ {
				// A new blob each time: the first bytes differ.
				copy(body, fmt.Sprintf("%s %08d", name, i))
				opts := store.IngestOptions{Size: BenchSize}
				if known {
					opts.Digest = digest.FromBytes(body)
				}
				blob, err := s.Ingest(ctx, bytes.NewReader(body), opts)
				if err != nil || !blob.Created {
					b.Fatalf("ingest: %+v, %v", blob, err)
				}
				b.StopTimer()
				if err := s.Delete(ctx, blob.Digest); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
	copy(body, "the blob read back")
	d := digest.FromBytes(body)
	if _, err := s.Ingest(ctx, bytes.NewReader(body), store.IngestOptions{Digest: d, Size: BenchSize}); err != nil {
		b.Fatal(err)
	}
	b.Run("verified-read", func(b *testing.B) {
		b.SetBytes(BenchSize)
		for b.Loop() {
			r, err := s.OpenReadSeeker(ctx, d, BenchSize)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(writeOnly{io.Discard}, r)
			r.Close()
			if err != nil || n != BenchSize || !r.Verified() {
				b.Fatalf("read %d bytes, verified %v: %v", n, r.Verified(), err)
			}
		}
	})
}

// writeOnly hides every method of its writer but Write, as an HTTP
// response writer does.
type writeOnly struct{ io.Writer }
