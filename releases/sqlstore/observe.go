package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/dmlproject/dml/releases/audit"
)

// Database operations as monitoring sees them (Observe): a read is one
// query outside a write transaction, answered up to its first row; a
// write is one write transaction, begin to commit, retries included, or
// one statement that writes outside one (the access log, a token's last
// use); a ping asks whether the database answers.
const (
	OpRead  = "read"
	OpWrite = "write"
	OpPing  = "ping"
)

// Observe makes fn see every database operation: its name (OpRead,
// OpWrite, OpPing), how long it took, and whether it failed for the
// database's sake — not a row that does not exist, a duplicate key, a
// rule of the domain refusing a change, or a caller that went away.
// fn must not block.
func (db *DB) Observe(fn func(op string, d time.Duration, failed bool)) { db.sql.observe.Store(&fn) }

// OnRecorded makes fn be called, after each write transaction commits,
// with the events it recorded, in order: counters derived from the
// events (api's domain metrics) then count what the audit log holds,
// never a change that rolled back. Only this process's writes are seen;
// other replicas count theirs. fn must not block.
func (db *DB) OnRecorded(fn func([]audit.Event)) { db.recorded.Store(&fn) }

// observedDB is the database handle every read goes through, timed.
type observedDB struct {
	*sql.DB
	observe atomic.Pointer[func(op string, d time.Duration, failed bool)]
	// failed says whether an error is the database's (dialect-aware).
	failed func(error) bool
}

func (o *observedDB) done(op string, start time.Time, err error) {
	if f := o.observe.Load(); f != nil {
		(*f)(op, time.Since(start), err != nil && o.failed(err))
	}
}

func (o *observedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	start := time.Now()
	rows, err := o.DB.QueryContext(ctx, query, args...)
	o.done(OpRead, start, err)
	return rows, err
}

func (o *observedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	start := time.Now()
	row := o.DB.QueryRowContext(ctx, query, args...)
	o.done(OpRead, start, row.Err())
	return row
}

func (o *observedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	start := time.Now()
	res, err := o.DB.ExecContext(ctx, query, args...)
	o.done(OpWrite, start, err)
	return res, err
}

func (o *observedDB) PingContext(ctx context.Context) error {
	start := time.Now()
	err := o.DB.PingContext(ctx)
	o.done(OpPing, start, err)
	return err
}

// databaseFailure says whether err is the database failing rather than
// an answer: not sql.ErrNoRows, not a duplicate key nor text it cannot
// store (answers about the request), not the caller's cancellation.
func (d dialect) databaseFailure(err error) bool {
	switch {
	case err == nil, errors.Is(err, sql.ErrNoRows), errors.Is(err, context.Canceled):
		return false
	case d.isUniqueViolation(err), d.isBadText(err):
		return false
	}
	return true
}

// writeFailure says whether a write transaction's error is the
// database's: the database unreachable, contention that outlasted the
// retries, a deadline that ran out; an error of fn (a rule of the domain,
// a compare-and-set that lost) is an answer.
func (d dialect) writeFailure(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded), d.isUnavailable(err), d.mustRetry(err):
		return true
	}
	var u unavailableError
	return errors.As(err, &u)
}

// txEvents collects the events one write transaction records
// (recordEvent), handed to OnRecorded's fn when it commits.
type txEvents struct{ events []audit.Event }
