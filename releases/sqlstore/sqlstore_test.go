package sqlstore_test

import (
	"path/filepath"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/metadatatest"
	"github.com/dmlproject/dml/releases/sqlstore"
)

// openFile opens a SQLite file the way `dml serve` does: a real file, so
// WAL and the busy timeout are exercised, not an in-memory database.
func openFile(t *testing.T, path string) releases.Metadata {
	t.Helper()
	db, err := sqlstore.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	return db
}

func TestMetadata(t *testing.T) {
	metadatatest.Run(t, func(t *testing.T) releases.Metadata {
		return openFile(t, filepath.Join(t.TempDir(), "dml.db"))
	})
}

func TestMetadataReopen(t *testing.T) {
	metadatatest.RunReopen(t, func(t *testing.T) func(t *testing.T) releases.Metadata {
		path := filepath.Join(t.TempDir(), "dml.db")
		return func(t *testing.T) releases.Metadata { return openFile(t, path) }
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
