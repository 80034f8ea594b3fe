package registry_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/dmlproject/dml/store/s3"
	"github.com/dmlproject/dml/store/s3/s3test"
	"github.com/dmlproject/dml/store/storetest"
	"github.com/opencontainers/go-digest"
)

// BenchmarkChunkedUpload is a chunked OCI upload through the domain: 64
// MiB in four 16 MiB PATCHes, then the PUT that completes it. The S3 case
// runs when DML_TEST_S3_ENDPOINT is set.
func BenchmarkChunkedUpload(b *testing.B) {
	b.Run("fs", func(b *testing.B) { benchChunkedUpload(b, domaintest.NewEnv(b)) })
	b.Run("s3", func(b *testing.B) {
		storetest.S3FromEnv(b)
		backend := s3test.NewBackend(b, func(c *s3.Config) { c.Prefix = "dml/" })
		benchChunkedUpload(b, domaintest.NewEnvOver(b, func(*fs.Backend) store.Backend { return backend }))
	})
}

func benchChunkedUpload(b *testing.B, env *domaintest.Env) {
	const chunk, chunks = 16 << 20, 4
	ctx, reg := env.Ctx, env.DML.Registry
	pub := env.Principal("pipeline", nil, access.RolePublisher)
	data := storetest.BodyBytes(32, chunk*chunks)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint64(data, uint64(i)) // a new blob each time
		u, err := reg.StartUpload(ctx, pub, "bench/chunked")
		if err != nil {
			b.Fatal(err)
		}
		for c := range chunks {
			p := data[c*chunk : (c+1)*chunk]
			if u, err = reg.AppendUpload(ctx, pub, "bench/chunked", u.ID, bytes.NewReader(p), nil, chunk); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := reg.CompleteUpload(ctx, pub, "bench/chunked", u.ID, digest.FromBytes(data), bytes.NewReader(nil), nil, 0); err != nil {
			b.Fatal(err)
		}
	}
}
