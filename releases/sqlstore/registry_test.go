package sqlstore_test

import (
	"testing"

	"github.com/dmlproject/dml/releases/metadatatest"
	"github.com/dmlproject/dml/releases/sqlstore"
)

func TestRegistry(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		metadatatest.RunRegistry(t, fresh(storage))
	})
}
