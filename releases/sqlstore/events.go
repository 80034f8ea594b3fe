package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
)

// Page sizes for ListArtifacts, ListReleases and Events: a caller that asks
// for nothing gets a useful page, and no caller can make one query return
// everything.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

func pageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("%w: limit %d is negative", errdef.ErrInvalidInput, limit)
	case limit == 0:
		return defaultLimit, nil
	case limit > maxLimit:
		return maxLimit, nil
	}
	return limit, nil
}

// recordEvent appends one event inside the caller's transaction, which is
// what makes "a change and its event, or neither" hold. details is
// marshalled once here, except a json.RawMessage, which the caller encoded
// and checked (checkJSON) and which is stored byte for byte (json.Marshal
// would compact it and escape HTML); an empty one means no details. The
// stored bytes are what Events returns, so the audit log hashes exactly
// what was recorded. The event's audit record (appendAudit) is written
// here too: this is the one place events are written, so every event is in
// the log, and a change that rolls back leaves neither.
//
// Seq order must be commit order, or a reader paging by seq could skip an
// event whose transaction commits after a later seq. On SQLite writers are
// serialised; on PostgreSQL the event is inserted under the audit log's
// lock (auditLock), held to the commit, which also gives appendAudit the
// next index to itself.
func (db *DB) recordEvent(ctx context.Context, tx *sql.Tx, at time.Time, actor access.Actor, action, subject string, details any) error {
	var d sql.NullString
	switch details := details.(type) {
	case nil:
	case json.RawMessage:
		d = sql.NullString{String: string(details), Valid: len(details) > 0}
	default:
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("event details: %w", err)
		}
		d = sql.NullString{String: string(b), Valid: true}
	}
	if err := db.lock(ctx, tx, auditLock); err != nil {
		return fmt.Errorf("record %s event: %w", action, err)
	}
	e := audit.Event{Time: fromNanos(toNanos(at)), Actor: actor, Action: action, Subject: subject}
	if d.Valid {
		e.Details = json.RawMessage(d.String)
	}
	// RETURNING (SQLite 3.35, PostgreSQL) rather than LastInsertId, which
	// PostgreSQL drivers do not implement.
	err := tx.QueryRowContext(ctx, db.q(`INSERT INTO events (time, actor_token_id, actor_name, actor_issuer, actor_subject, action, subject, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		toNanos(e.Time), actor.TokenID, actor.Name, actor.Issuer, actor.Subject, action, subject, d).Scan(&e.Seq)
	if err != nil {
		return fmt.Errorf("record %s event: %w", action, err)
	}
	if err := db.appendAudit(ctx, tx, e); err != nil {
		return fmt.Errorf("record %s event: %w", action, err)
	}
	if p, ok := db.pending.Load(tx); ok {
		// One goroutine runs a transaction: no lock needed.
		p.(*txEvents).events = append(p.(*txEvents).events, e)
	}
	return nil
}

// Events returns recorded events with Seq > after, oldest first; limit 0
// means 100 and at most 1000 are returned.
func (a *Audit) Events(ctx context.Context, after int64, limit int) ([]audit.Event, error) {
	db := a.db
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	evs, err := db.events(ctx, db.sql, after, limit, true)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: events after %d: %w", after, db.translate(err))
	}
	return evs, nil
}

// events reads one page of events through q: the database, or a
// migration that backfills from them. identity reads the actors'
// single sign-on identity, whose columns migration 0013 adds: the
// migrations before it read without (no event had one then).
func (db *DB) events(ctx context.Context, q querier, after int64, limit int, identity bool) ([]audit.Event, error) {
	idColumns := `'', ''`
	if identity {
		idColumns = `actor_issuer, actor_subject`
	}
	rows, err := q.QueryContext(ctx, db.q(`SELECT seq, time, actor_token_id, actor_name, `+idColumns+`, action, subject, details
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var (
			e       audit.Event
			t       int64
			details sql.NullString
		)
		if err := rows.Scan(&e.Seq, &t, &e.Actor.TokenID, &e.Actor.Name, &e.Actor.Issuer, &e.Actor.Subject, &e.Action, &e.Subject, &details); err != nil {
			return nil, err
		}
		e.Time = fromNanos(t)
		if details.Valid {
			e.Details = json.RawMessage(details.String)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
