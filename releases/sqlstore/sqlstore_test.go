package sqlstore_test

import (
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/metadatatest"
	"github.com/dmlproject/dml/releases/sqlstore"
)

// fresh opens a handle onto new, empty storage of one dialect.
func fresh(storage sqlstore.Storage) func(t *testing.T) releases.Metadata {
	return func(t *testing.T) releases.Metadata { return storage(t)(t) }
}

// handles opens handles onto one storage, for the suites that reopen it.
func handles(storage sqlstore.Storage) func(t *testing.T) func(t *testing.T) releases.Metadata {
	return func(t *testing.T) func(t *testing.T) releases.Metadata {
		open := storage(t)
		return func(t *testing.T) releases.Metadata { return open(t) }
	}
}

// The conformance suites, on every dialect (sqlstore.ForEachDialect):
// SQLite files as `dml serve` opens them, so WAL and the busy timeout are
// exercised, and PostgreSQL databases.

func TestMetadata(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		metadatatest.Run(t, fresh(storage))
	})
}

func TestMetadataReopen(t *testing.T) {
	sqlstore.ForEachDialect(t, func(t *testing.T, storage sqlstore.Storage) {
		metadatatest.RunReopen(t, handles(storage))
	})
}

// TestMetadataInMemory covers Open with a plain DSN and the one-connection
// pool an in-memory database needs.
func TestMetadataInMemory(t *testing.T) {
	metadatatest.Run(t, func(t *testing.T) releases.Metadata {
		db, err := sqlstore.Open(t.Context(), ":memory:")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	})
}
