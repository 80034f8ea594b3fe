package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/store"

	// Registers the pure-Go "sqlite" database/sql driver.
	_ "modernc.org/sqlite"
)

var _ releases.Metadata = (*DB)(nil)

// sqlitePragmas are applied by the driver to every new connection.
//   - busy_timeout: another process (a second dml on the same file) holding
//     the write lock makes us wait up to 10s instead of failing at once.
//   - journal_mode WAL: readers never block the writer nor each other.
//   - foreign_keys: SQLite leaves them off unless asked, per connection.
//   - synchronous NORMAL: with WAL, durable against application crashes;
//     only an OS crash may lose the last commits, never corrupt the file.
//   - _txlock=immediate: write transactions take the write lock at BEGIN,
//     so a transaction that reads before it writes cannot fail half-way
//     with SQLITE_BUSY when it upgrades its lock.
const sqlitePragmas = "_pragma=busy_timeout(10000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)" +
	"&_txlock=immediate"

// DB is the SQL implementation of releases.Metadata. It is safe for
// concurrent use, and on PostgreSQL by any number of processes at once.
type DB struct {
	// sql times every read for Observe (observe.go).
	sql     *observedDB
	dialect dialect
	// writer holds a slot for each write transaction in flight
	// (dialect.writers). Waiting on a channel can be cancelled by the
	// context; waiting in SQLite's busy handler cannot, and under load it
	// times out with SQLITE_BUSY.
	writer chan struct{}
	now    func() time.Time
	// committed, when set (OnCommit), is called after every write
	// transaction that committed.
	committed atomic.Pointer[func()]
	// recorded, when set (OnRecorded), is given the events of every
	// write transaction that committed; pending holds them per open
	// transaction (*sql.Tx to *txEvents) until then.
	recorded atomic.Pointer[func([]audit.Event)]
	pending  sync.Map
}

// OnCommit makes fn be called after every write transaction that
// commits: the domain wakes what waits for new events (releases/events).
// fn must not block.
func (db *DB) OnCommit(fn func()) { db.committed.Store(&fn) }

// OpenDatabase opens what `dml serve --database` names: "sqlite:PATH", a
// SQLite file (OpenSQLite), or a postgres:// or postgresql:// URL
// (OpenPostgres).
func OpenDatabase(ctx context.Context, database string) (*DB, error) {
	if path, ok := strings.CutPrefix(database, "sqlite:"); ok {
		return OpenSQLite(ctx, path)
	}
	if isPostgresURL(database) {
		return OpenPostgres(ctx, database)
	}
	return nil, fmt.Errorf("sqlstore: %w: database %q must be sqlite:PATH or a postgres:// URL", errdef.ErrInvalidInput, Redact(database))
}

// OpenSQLite opens (creating if needed) the SQLite database file at path
// with the pragmas dml relies on, and migrates it to the current schema.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	// The driver splits the DSN at the first "?", so a path containing one
	// would silently open another file.
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlstore: %w: database path %q must be non-empty and contain no '?'", errdef.ErrInvalidInput, path)
	}
	return Open(ctx, path+"?"+sqlitePragmas)
}

// Open opens the database named by dsn and migrates it to the current
// schema. dsn is a PostgreSQL URL (OpenPostgres) or a modernc.org/sqlite
// DSN (a file path or "file:" URI, with optional "_pragma=" parameters);
// prefer OpenSQLite, which adds the pragmas this package is tuned for.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if dsn == "" {
		// SQLite would give every pooled connection its own private
		// temporary database.
		return nil, fmt.Errorf("sqlstore: %w: empty DSN", errdef.ErrInvalidInput)
	}
	if isPostgresURL(dsn) {
		return OpenPostgres(ctx, dsn)
	}
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	if inMemory(dsn) {
		// Each connection to ":memory:" is a separate, empty database.
		sqldb.SetMaxOpenConns(1)
	} else {
		// Readers run in parallel under WAL; bound the pool because every
		// SQLite connection carries its own page cache, and keep the
		// connections idle rather than re-running the pragmas on each.
		n := max(4, runtime.GOMAXPROCS(0))
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
	}
	return newDB(sqldb, sqliteDialect).start(ctx)
}

func newDB(sqldb *sql.DB, d dialect) *DB {
	return &DB{sql: &observedDB{DB: sqldb, failed: d.databaseFailure}, dialect: d, now: time.Now, writer: make(chan struct{}, d.writers)}
}

// start checks that the database answers and migrates it; on failure the
// database is closed.
func (db *DB) start(ctx context.Context) (*DB, error) {
	fail := func(what string, err error) (*DB, error) {
		db.sql.Close()
		if db.dialect.isUnavailable(err) {
			err = unavailableError{err}
		}
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	if err := db.ping(ctx); err != nil {
		return fail("open", err)
	}
	if err := db.migrate(ctx); err != nil {
		return fail("migrate", err)
	}
	return db, nil
}

// ping checks that a new database answers. Several processes opening a
// new SQLite file at once (replicas starting together) can get
// SQLITE_BUSY without SQLite's busy handler waiting — turning the file to
// WAL takes a lock the handler does not cover — so a busy answer is tried
// again, with a growing pause, for as long as busy_timeout would wait.
func (db *DB) ping(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		err := db.sql.PingContext(ctx)
		if err == nil || !sqliteBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

func inMemory(dsn string) bool {
	return strings.HasPrefix(dsn, ":memory:") ||
		strings.HasPrefix(dsn, "file::memory:") ||
		strings.Contains(dsn, "mode=memory")
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", db.translate(err))
	}
	return nil
}

// Close closes the database; calls in flight finish first.
func (db *DB) Close() error {
	return db.sql.Close()
}

// Retries of a write transaction that failed for contention alone (a
// deadlock, a serialisation failure): attempts in all, and the cap of the
// random pause before each retry, which doubles from retryPause.
const (
	writeAttempts = 8
	retryPause    = 2 * time.Millisecond
	retryPauseMax = 250 * time.Millisecond
)

// write runs fn in one transaction, committing if it returns nil and
// rolling back otherwise. It is the only way this package writes, so that
// a change and its event share a transaction and writers take their slot
// (DB.writer).
//
// A transaction the database aborted for contention alone (dialect
// mustRetry: a deadlock between row locks taken in different orders) is
// run again from the start, a bounded number of times after a random
// pause. fn must therefore decide only on what it reads through tx, and
// set what it hands back to its caller afresh on each run; the domain's
// functions it calls are pure over what the transaction read.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case db.writer <- struct{}{}:
		defer func() { <-db.writer }()
	case <-ctx.Done():
		return ctx.Err()
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		evs, txFailed, err := db.inTx(ctx, fn)
		if err == nil {
			db.sql.done(OpWrite, start, nil)
			if f := db.committed.Load(); f != nil {
				(*f)()
			}
			if f := db.recorded.Load(); f != nil && len(evs) > 0 {
				(*f)(evs)
			}
			return nil
		}
		if attempt == writeAttempts || !db.dialect.mustRetry(err) {
			if f := db.sql.observe.Load(); f != nil {
				(*f)(OpWrite, time.Since(start), txFailed || db.dialect.writeFailure(err))
			}
			return err
		}
		pause := time.Duration(rand.Int64N(int64(min(retryPause<<attempt, retryPauseMax))))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			db.sql.done(OpWrite, start, ctx.Err())
			return err
		}
	}
}

// inTx is one run of write's transaction. It returns the events the
// transaction recorded, and whether beginning or committing it failed
// (the database's failure, whatever the error).
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) ([]audit.Event, bool, error) {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, !errors.Is(err, context.Canceled), err
	}
	p := &txEvents{}
	db.pending.Store(tx, p)
	defer db.pending.Delete(tx)
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one that matters
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, !errors.Is(err, context.Canceled), err
	}
	return p.events, false, nil
}

// q adapts a query to the dialect.
func (db *DB) q(query string) string { return db.dialect.rebind(query) }

// translate maps driver errors to the domain's sentinels; anything else is
// returned as is (wrapped by the caller with what was being done).
func (db *DB) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return errdef.ErrNotFound
	case db.dialect.isUniqueViolation(err):
		return errdef.ErrConflict
	case db.dialect.isUnavailable(err):
		return unavailableError{err}
	case db.dialect.isBadText(err):
		return fmt.Errorf("%w: text the database cannot store (%v)", errdef.ErrInvalidInput, err)
	}
	return err
}

// unavailableError is a database that cannot be reached or is shutting
// down: store.ErrUnavailable, which callers (and the API, with 503)
// already treat as "nothing wrong with the request, try again later",
// with the driver's error as its cause. A cancelled context is never one.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{store.ErrUnavailable, e.err} }

// Times are stored as Unix nanoseconds; these keep the conversion in one
// place and always hand back UTC without a monotonic reading, so a value
// returned by a write equals the value read back later.
func toNanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// storableTime normalises t, or reports that it lies outside the years
// 1678-2262 that Unix nanoseconds can hold.
func storableTime(t time.Time) (time.Time, bool) {
	n := fromNanos(toNanos(t))
	return n, n.Equal(t)
}

// timeOrNow is storableTime for a creation time the caller may leave zero,
// meaning "now".
func (db *DB) timeOrNow(t time.Time) (time.Time, bool) {
	if t.IsZero() {
		t = db.now()
	}
	return storableTime(t)
}

// checkJSON accepts doc if it can be stored as TEXT and handed back byte for
// byte: valid JSON in valid UTF-8. encoding/json alone lets invalid UTF-8
// through, which PostgreSQL's TEXT would refuse.
func checkJSON(doc []byte) error {
	if !utf8.Valid(doc) || !json.Valid(doc) {
		return fmt.Errorf("%w: not valid JSON in UTF-8", errdef.ErrInvalidInput)
	}
	return nil
}

// sha256Hex names stored bytes in event details, so the audit log commits
// to a document or key without repeating it.
func sha256Hex[T ~string | ~[]byte](b T) string {
	sum := sha256.Sum256([]byte(b))
	return hex.EncodeToString(sum[:])
}
