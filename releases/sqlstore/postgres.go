package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresConns is the connection pool of one process. Half of it may run
// write transactions (dialect.writers); the other half is left for reads,
// including those a write's decision makes outside its transaction.
const postgresConns = 16

// The SQLSTATE codes the adapter acts on (PostgreSQL manual, appendix A).
const (
	pgUniqueViolation          = "23505"
	pgSerializationFailure     = "40001"
	pgDeadlockDetected         = "40P01"
	pgCharacterNotInRepertoire = "22021"
	pgUntranslatableCharacter  = "22P05"
	pgTooManyConnections       = "53300"
	pgAdminShutdown            = "57P01"
	pgCrashShutdown            = "57P02"
	pgCannotConnectNow         = "57P03"
	pgConnectionException      = "08" // the class
)

// postgresDialect runs on PostgreSQL at READ COMMITTED, PostgreSQL's
// default: each statement sees what was committed when it began. What a
// write transaction reads and then decides on is kept still until its
// commit by a row lock (lockRow) when the row exists, or by a
// transaction-level advisory lock (lock, keyed as dialect.go lists) when
// the decision is about a row that is not there yet. Waiting for a lock,
// then reading, sees the previous holder's commit.
var postgresDialect = dialect{
	name:              "postgres",
	numbered:          true,
	writers:           postgresConns / 2,
	lockRow:           " FOR UPDATE",
	lock:              pgLock,
	snapshot:          sql.LevelRepeatableRead,
	migrations:        "migrations/postgres",
	migrationLock:     pgMigrationLock,
	isUniqueViolation: func(err error) bool { return pgCode(err) == pgUniqueViolation },
	mustRetry: func(err error) bool {
		code := pgCode(err)
		return code == pgSerializationFailure || code == pgDeadlockDetected
	},
	isUnavailable: pgUnavailable,
	isBadText: func(err error) bool {
		code := pgCode(err)
		return code == pgCharacterNotInRepertoire || code == pgUntranslatableCharacter
	},
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// pgUnavailable reports a server that cannot be reached, refuses
// connections, or is shutting down. A cancelled or expired context is the
// caller's, not the database's, and is left as it is.
func pgUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch code := pgCode(err); {
	case code == pgAdminShutdown, code == pgCrashShutdown, code == pgCannotConnectNow, code == pgTooManyConnections,
		strings.HasPrefix(code, pgConnectionException):
		return true
	case code != "":
		return false // the server answered
	}
	var (
		connect *pgconn.ConnectError
		network net.Error
	)
	return errors.As(err, &connect) || errors.As(err, &network) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF)
}

// lockID maps a lock key to PostgreSQL's 64-bit advisory lock space. Two
// keys sharing an id only wait for each other needlessly.
func lockID(key string) int64 {
	sum := sha256.Sum256([]byte("dml\x00" + key))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// pgLock takes transaction-level advisory locks, released by the commit or
// rollback. Keys of one call are taken in id order, so two transactions
// locking the same set cannot each hold what the other waits for.
func pgLock(ctx context.Context, tx *sql.Tx, keys ...string) error {
	ids := make([]int64, len(keys))
	for i, k := range keys {
		ids[i] = lockID(k)
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, id); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	return nil
}

// pgMigrationLock holds the migration lock in a transaction of its own,
// open on its own connection while the migrations run on others: replicas
// starting together migrate one after the other, and the lock goes with
// the transaction however it ends (release, a cancelled context, a broken
// connection), never left behind on a pooled connection.
func pgMigrationLock(ctx context.Context, sqldb *sql.DB) (func(), error) {
	tx, err := sqldb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID("migrations")); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() { _ = tx.Rollback() }, nil
}

// isPostgresURL reports a PostgreSQL connection URL.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// OpenPostgres opens the PostgreSQL database at rawURL (postgres:// or
// postgresql://, any parameter libpq accepts: sslmode, connect_timeout…)
// through pgx, and migrates it to the current schema under a lock that
// keeps other processes opening it meanwhile waiting. No error it returns
// carries the URL's password.
func OpenPostgres(ctx context.Context, rawURL string) (*DB, error) {
	if !isPostgresURL(rawURL) {
		return nil, fmt.Errorf("sqlstore: %w: %s is not a postgres:// or postgresql:// URL", errdef.ErrInvalidInput, Redact(rawURL))
	}
	secrets := urlSecrets(rawURL)
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, scrub(fmt.Errorf("sqlstore: %w: PostgreSQL URL %s: %w", errdef.ErrInvalidInput, Redact(rawURL), err), secrets)
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(postgresConns)
	sqldb.SetMaxIdleConns(postgresConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db, err := newDB(sqldb, postgresDialect).start(ctx)
	if err != nil {
		return nil, scrub(err, secrets)
	}
	return db, nil
}

// Redact returns a database name as it may be logged: a PostgreSQL URL
// without its password (in the user info or a password parameter);
// anything else as it is.
func Redact(database string) string {
	if !isPostgresURL(database) {
		return database
	}
	u, err := url.Parse(database)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// urlSecrets are the passwords rawURL carries, as written and decoded.
func urlSecrets(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Unparsable: whatever sits between the scheme's "//" and the last
		// "@" may be a password.
		rest := rawURL[strings.Index(rawURL, "//")+2:]
		if at := strings.LastIndex(rest, "@"); at > 0 {
			return []string{rest[:at]}
		}
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p)
	}
	for _, k := range []string{"password", "sslpassword"} {
		if p := u.Query().Get(k); p != "" {
			out = append(out, p)
		}
	}
	for _, s := range slices.Clone(out) {
		if e := url.QueryEscape(s); e != s {
			out = append(out, e)
		}
		if e := url.PathEscape(s); e != s {
			out = append(out, e)
		}
	}
	return out
}

// scrub hides secrets from err's message, keeping what it wraps for
// errors.Is. pgx already redacts passwords from the errors it makes; this
// is the guarantee that none slips through whatever reports a failure.
func scrub(err error, secrets []string) error {
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s scrubbed) Error() string { return s.msg }
func (s scrubbed) Unwrap() error { return s.err }
