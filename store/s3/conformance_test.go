package s3_test

import (
	"testing"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/s3"
	"github.com/dmlproject/dml/store/s3/s3test"
	"github.com/dmlproject/dml/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.S3FromEnv(t) // skip (or fail in CI) once, not in every subtest
	storetest.Run(t, func(t *testing.T) store.Backend {
		// The smallest part size, so the suite's 10 MiB bodies go up in parts.
		return s3test.NewBackend(t, func(c *s3.Config) { c.Prefix = "dml/"; c.PartSize = s3.MinPartSize })
	})
}
