package sqlstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dmlproject/dml/internal/pgtest"
)

// testDialect is a dialect the tests run on: how to make new, empty
// storage (named as its Open takes it) and how to open it.
type testDialect struct {
	dialect
	newStorage func(t *testing.T) string
	open       func(ctx context.Context, name string) (*DB, error)
	// driver is the database/sql driver that opens name as it is, without
	// this package (to look at what it left).
	driver string
}

var testDialects = []testDialect{
	// A file, opened as `dml serve` opens it: WAL and the busy timeout
	// are exercised.
	{sqliteDialect, func(t *testing.T) string { return filepath.Join(t.TempDir(), "dml.db") }, OpenSQLite, "sqlite"},
	// A new database per test on the server internal/pgtest names.
	{postgresDialect, func(t *testing.T) string { return pgtest.NewDatabase(t) }, OpenPostgres, "pgx"},
}

// forEachDialect runs fn as one subtest per dialect, named after it;
// PostgreSQL is skipped without a server, and fails in CI.
func forEachDialect(t *testing.T, fn func(t *testing.T, d testDialect)) {
	for _, d := range testDialects {
		t.Run(d.name, func(t *testing.T) {
			if d.name == postgresDialect.name {
				pgtest.Require(t)
			}
			fn(t, d)
		})
	}
}

// openT opens storage name, failing t otherwise; the handle is closed
// when t ends.
func (d testDialect) openT(t *testing.T, name string) *DB {
	t.Helper()
	db, err := d.open(t.Context(), name)
	if err != nil {
		t.Fatalf("open %s: %v", d.name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// handles makes new storage and opens n handles onto it: n processes
// sharing one database (replicas, or a server and a maintenance command).
func (d testDialect) handles(t *testing.T, n int) []*DB {
	t.Helper()
	name := d.newStorage(t)
	out := make([]*DB, n)
	for i := range out {
		out[i] = d.openT(t, name)
	}
	return out
}

// Storage prepares new, empty storage for a test and returns a function
// that opens a handle onto it, closed when the test that opened it ends.
type Storage func(t *testing.T) (open func(t *testing.T) *DB)

// ForEachDialect runs fn as one subtest per dialect (SQLite, PostgreSQL),
// for the conformance suites (package sqlstore_test).
func ForEachDialect(t *testing.T, fn func(t *testing.T, storage Storage)) {
	forEachDialect(t, func(t *testing.T, d testDialect) {
		fn(t, func(t *testing.T) func(t *testing.T) *DB {
			name := d.newStorage(t)
			return func(t *testing.T) *DB { return d.openT(t, name) }
		})
	})
}
