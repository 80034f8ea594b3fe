package storetest

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Body returns n deterministic pseudo-random bytes, generated as they are
// read, so large bodies never sit in memory. The same seed gives the same
// bytes.
func Body(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// BodyBytes is Body read into memory, for small bodies.
func BodyBytes(seed uint64, n int64) []byte {
	b, _ := io.ReadAll(Body(seed, n))
	return b
}

// BodyDigest is the digest of Body(seed, n) under alg.
func BodyDigest(alg digest.Algorithm, seed uint64, n int64) digest.Digest {
	d, err := alg.FromReader(Body(seed, n))
	if err != nil {
		panic(err) // Body never fails
	}
	return d
}

// ReadDigest reads r to the end and returns its digest under alg.
func ReadDigest(t testing.TB, alg digest.Algorithm, r io.Reader) (digest.Digest, int64) {
	t.Helper()
	dg := alg.Digester()
	n, err := io.Copy(dg.Hash(), r)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", n, err)
	}
	return dg.Digest(), n
}

// ErrReader is what FaultyReader fails with.
var ErrReader = errors.New("storetest: the reader failed")

// FaultyReader returns the first n bytes of r, then fails with ErrReader
// instead of io.EOF. With withData the error comes together with the
// last of the n bytes, as network readers sometimes do; otherwise from the
// next Read.
func FaultyReader(r io.Reader, n int64, withData bool) io.Reader {
	return &faultyReader{r: r, left: n, withData: withData}
}

type faultyReader struct {
	r        io.Reader
	left     int64
	withData bool
}

func (f *faultyReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, ErrReader
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	if f.left <= 0 && f.withData {
		return n, ErrReader
	}
	if err == io.EOF {
		return n, ErrReader // r was shorter than n
	}
	return n, err
}
