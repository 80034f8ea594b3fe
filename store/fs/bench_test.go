package fs_test

import (
	"testing"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/storetest"
)

func BenchmarkStreams(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) store.Backend { return open(t, t.TempDir()) })
}
