package sqlstore

import (
	"context"
	"database/sql"
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
// rebind; the schema (migrations), error classification and the locks
// that keep several writers apart are per dialect.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of "?".
	numbered bool
	// writers bounds the write transactions this process runs at once.
	// SQLite admits one writer, so writers queue in process (cancellably)
	// instead of failing with SQLITE_BUSY. PostgreSQL admits many; the
	// bound keeps part of the connection pool free for the reads a
	// transaction's decision makes outside it, so a full pool of writers
	// cannot wait on each other for a connection.
	writers int
	// lockRow ends a SELECT of one row inside a write transaction to keep
	// other writers off that row until the commit (" FOR UPDATE" on
	// PostgreSQL). Empty for a dialect with one writer, whose write
	// transaction already excludes every other (ModifyRelease).
	lockRow string
	// lock takes transaction-level locks on keys (nameLock, auditLock…)
	// that guard what has no row to lock yet (a version about to be
	// created, the next audit index). nil for a dialect with one writer.
	lock func(ctx context.Context, tx *sql.Tx, keys ...string) error
	// snapshot is the isolation of a read-only transaction that must see
	// one state of the database across its queries (TagsReaching).
	snapshot sql.IsolationLevel
	// migrations is the directory of migrationFiles for this dialect.
	migrations string
	// migrationLock, when set, holds every other process's migrations off
	// until release is called (db.migrate).
	migrationLock func(ctx context.Context, db *sql.DB) (release func(), err error)
	// isUniqueViolation reports a primary-key or UNIQUE constraint failure.
	isUniqueViolation func(error) bool
	// mustRetry reports an error after which the whole transaction may
	// succeed if run again: a deadlock or a serialisation failure.
	mustRetry func(error) bool
	// isUnavailable reports that the database cannot be reached or is
	// shutting down: nothing is wrong with the request.
	isUnavailable func(error) bool
	// isBadText reports text the database cannot store (PostgreSQL's
	// TEXT holds neither NUL nor invalid UTF-8).
	isBadText func(error) bool
}

var sqliteDialect = dialect{
	name:              "sqlite",
	writers:           1,
	migrations:        "migrations/sqlite",
	isUniqueViolation: sqliteUniqueViolation,
	mustRetry:         func(error) bool { return false },
	isUnavailable:     func(error) bool { return false },
	isBadText:         func(error) bool { return false },
}

// Lock keys (dialect.lock). A transaction takes them in this order,
// outermost first, and row locks (lockRow) between nameLock and the
// others, so that waits for them never go round in a circle. (Row locks
// taken in different orders can: PostgreSQL then aborts one transaction
// as deadlocked, and DB.write runs it again.)
//
//	nameLock → rows (artifacts, releases, tags, uploads) → claimLock →
//	blobLock → policyLock → rootLock → settingLock → firstTokenLock → auditLock
//
// Each guards a decision that reads what is not there yet:
//   - nameLock: an artifact name, which is also an OCI repository. REST
//     pushes and every registry change of the repository (a tag created
//     where no artifact was, a manifest deleted while it is tagged, a
//     blob unlinked while a manifest refers to it) decide one at a time.
//   - claimLock: an evidence claim's first presentation.
//   - blobLock: a blob's integrity record, and gc's deletion of it
//     against writers' claims on it.
//   - policyLock: the next trust policy version.
//   - rootLock: a trusted root's next version, its revocation, and an
//     identity's check that the root it names is installed and unrevoked.
//   - settingLock: a setting's next value (ModifySetting).
//   - firstTokenLock: whether any token was issued yet (CreateFirstToken).
//   - auditLock: the next audit log index (recordEvent). It is taken last,
//     just before the event is written, and held to the commit: appends
//     are one after the other, in commit order, whichever connection or
//     process makes them.
func nameLock(name string) string   { return "name\x00" + name }
func claimLock(claim string) string { return "claim\x00" + claim }
func blobLock(digest string) string { return "blob\x00" + digest }
func settingLock(key string) string { return "setting\x00" + key }
func rootLock(id string) string     { return "root\x00" + id }

const (
	policyLock     = "trust.policy"
	firstTokenLock = "tokens.first"
	auditLock      = "audit"
)

// lock takes the transaction-level locks keys, on a dialect with several
// writers; with one writer the transaction excludes every other already.
func (db *DB) lock(ctx context.Context, tx *sql.Tx, keys ...string) error {
	if db.dialect.lock == nil || len(keys) == 0 {
		return nil
	}
	return db.dialect.lock(ctx, tx, keys...)
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

// sqliteBusy reports SQLITE_BUSY, in any of its extended forms.
func sqliteBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
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
