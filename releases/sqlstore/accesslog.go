package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// The access log lives in its own table, outside the events and the
// Merkle log: it is written without an event and pruned.

// AccessLog is the persistence of the access log (audit.AccessStore):
// db.AccessLog().
type AccessLog struct{ db *DB }

var _ audit.AccessStore = (*AccessLog)(nil)

// AccessLog returns the access log's store.
func (db *DB) AccessLog() audit.AccessStore { return &AccessLog{db} }

const accessColumns = `seq, time, principal, token_id, method, route, path, status, outcome, code, message, subject, name, version, digest, remote`

func scanAccess(r rowScanner) (audit.AccessRecord, error) {
	var (
		a       audit.AccessRecord
		at      int64
		outcome string
		d       string
	)
	err := r.Scan(&a.Seq, &at, &a.Principal, &a.TokenID, &a.Method, &a.Route, &a.Path, &a.Status, &outcome,
		&a.Code, &a.Message, &a.Subject, &a.Name, &a.Version, &d, &a.Remote)
	if err != nil {
		return audit.AccessRecord{}, err
	}
	a.Time, a.Outcome, a.Digest = fromNanos(at), audit.AccessOutcome(outcome), digest.Digest(d)
	return a, nil
}

// RecordAccess appends one access record; it records no event.
func (l *AccessLog) RecordAccess(ctx context.Context, a audit.AccessRecord) error {
	db := l.db
	at, ok := db.timeOrNow(a.Time)
	if !ok {
		return fmt.Errorf("%w: access record time %s out of range", errdef.ErrInvalidInput, a.Time)
	}
	if a.Outcome == "" || a.Method == "" {
		return fmt.Errorf("%w: an access record needs a method and an outcome", errdef.ErrInvalidInput)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO access_log (time, principal, token_id, method, route, path, status, outcome, code, message, subject, name, version, digest, remote)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			toNanos(at), a.Principal, a.TokenID, a.Method, a.Route, a.Path, a.Status, string(a.Outcome),
			a.Code, a.Message, a.Subject, a.Name, a.Version, a.Digest.String(), a.Remote)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: record access: %w", db.translate(err))
	}
	return nil
}

// accessCursor is the seq of the last record of a page, opaque to
// clients like the other cursors (and malformed for the other lists).
type accessCursor struct {
	Seq int64 `json:"a"`
}

func (c accessCursor) String() string {
	b, _ := json.Marshal(c) // an integer cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeAccessCursor(s string) (accessCursor, error) {
	var c accessCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Seq <= 0 {
		return accessCursor{}, fmt.Errorf("%w: malformed cursor %q", errdef.ErrInvalidInput, s)
	}
	return c, nil
}

// AccessRecords returns one page in seq (recording) order. A subject
// matches records about exactly it, and, as an artifact name, records
// about any version or digest of that name.
func (l *AccessLog) AccessRecords(ctx context.Context, f audit.AccessFilter) ([]audit.AccessRecord, string, error) {
	db := l.db
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", fmt.Errorf("access records: %w", err)
	}
	var (
		where []string
		args  []any
	)
	if f.Subject != "" {
		where = append(where, "(subject = ? OR name = ?)")
		args = append(args, f.Subject, f.Subject)
	}
	if f.Principal != "" {
		where = append(where, "principal = ?")
		args = append(args, f.Principal)
	}
	if !f.Since.IsZero() {
		since, ok := storableTime(f.Since)
		if !ok {
			return nil, "", fmt.Errorf("access records: %w: since %s out of range", errdef.ErrInvalidInput, f.Since)
		}
		where = append(where, "time >= ?")
		args = append(args, toNanos(since))
	}
	if f.Cursor != "" {
		c, err := decodeAccessCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("access records: %w", err)
		}
		where = append(where, "seq > ?")
		args = append(args, c.Seq)
	}
	q := `SELECT ` + accessColumns + ` FROM access_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, limit+1)
	rows, err := db.sql.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: access records: %w", db.translate(err))
	}
	defer rows.Close()
	out := []audit.AccessRecord{}
	for rows.Next() {
		a, err := scanAccess(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlstore: access records: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: access records: %w", db.translate(err))
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	return out, accessCursor{Seq: out[limit-1].Seq}.String(), nil
}

// pruneBatch bounds one delete transaction, so that pruning a large log
// holds the (single) writer only briefly at a time.
const pruneBatch = 5000

// PruneAccess deletes records older than before and, when keep > 0, all
// but the newest keep, oldest first, in batches.
func (l *AccessLog) PruneAccess(ctx context.Context, before time.Time, keep int) (int, error) {
	db := l.db
	cut, ok := storableTime(before)
	if !ok {
		return 0, fmt.Errorf("%w: prune time %s out of range", errdef.ErrInvalidInput, before)
	}
	total, err := db.deleteAccess(ctx, "time < ?", toNanos(cut))
	if err != nil || keep <= 0 {
		return total, err
	}
	// The seq of the keep-th newest record: everything before it goes.
	var oldestKept int64
	err = db.sql.QueryRowContext(ctx, db.q(`SELECT seq FROM access_log ORDER BY seq DESC LIMIT 1 OFFSET ?`), keep-1).Scan(&oldestKept)
	if errors.Is(err, sql.ErrNoRows) {
		return total, nil
	}
	if err != nil {
		return total, fmt.Errorf("sqlstore: prune access log: %w", db.translate(err))
	}
	n, err := db.deleteAccess(ctx, "seq < ?", oldestKept)
	return total + n, err
}

// deleteAccess deletes the records matching cond, a batch at a time.
func (db *DB) deleteAccess(ctx context.Context, cond string, arg any) (int, error) {
	total := 0
	for {
		var n int64
		err := db.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, db.q(`DELETE FROM access_log WHERE seq IN
				(SELECT seq FROM access_log WHERE `+cond+` ORDER BY seq LIMIT ?)`), arg, pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sqlstore: prune access log: %w", db.translate(err))
		}
		total += int(n)
		if n < pruneBatch {
			return total, nil
		}
	}
}
