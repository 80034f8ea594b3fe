package sqlstore_test

import (
	"testing"

	"github.com/dmlproject/dml/releases/metadatatest"
	"github.com/dmlproject/dml/releases/sqlstore"
)

func TestIntegrity(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		metadatatest.RunIntegrity(t, fresh(storage))
	})
}

func TestRetention(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		metadatatest.RunRetention(t, fresh(storage))
	})
}

func TestQuotas(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		metadatatest.RunQuotas(t, fresh(storage))
	})
}

func TestStats(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		metadatatest.RunStats(t, fresh(storage))
	})
}
