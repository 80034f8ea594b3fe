package s3_test

import (
	"testing"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/s3/s3test"
	"github.com/dmlproject/dml/store/storetest"
)

func BenchmarkStreams(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) store.Backend { return s3test.NewBackend(t, nil) })
}
