package fs_test

import (
	"testing"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t, t.TempDir()) })
}
