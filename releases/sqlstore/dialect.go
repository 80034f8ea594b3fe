package sqlstore

import (
	"embed"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// migrationFiles holds one directory of numbered .sql files per dialect.
//
//go:embed migrations
var migrationFiles embed.FS

// dialect is everything that differs between SQL databases. Queries are
// written once, with "?" placeholders and standard SQL, and pass through
// rebind; only the schema (migrations) and error classification are
// per dialect.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of "?".
	numbered bool
	// oneWriter: the database admits a single writer at a time (SQLite),
	// so writers queue in process instead of failing with SQLITE_BUSY.
	oneWriter bool
	// lockRow ends a SELECT of one row inside a write transaction to keep
	// other writers off that row until the commit (" FOR UPDATE" on
	// PostgreSQL). Empty for a dialect with one writer, whose write
	// transaction already excludes every other (ModifyRelease).
	lockRow string
	// migrations is the directory of migrationFiles for this dialect.
	migrations string
	// isUniqueViolation reports a primary-key or UNIQUE constraint failure.
	isUniqueViolation func(error) bool
}

var sqliteDialect = dialect{
	name:              "sqlite",
	oneWriter:         true,
	migrations:        "migrations/sqlite",
	isUniqueViolation: sqliteUniqueViolation,
}

// rebind rewrites the "?" placeholders of q for d. Queries in this package
// never contain "?" inside literals, so a plain scan is enough.
func (d dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (d dialect) migrationFS() (fs.FS, error) {
	return fs.Sub(migrationFiles, d.migrations)
}

func sqliteUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	// The driver turns on extended result codes, so a constraint failure
	// says which constraint; NOT NULL or CHECK failures are bugs, not
	// conflicts.
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}
