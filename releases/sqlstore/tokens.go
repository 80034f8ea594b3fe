package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases"
)

const tokenColumns = `id, name, roles, environments, created_by, created_at, revoked_at, expires_at, last_used_at`

// optionalTime reads a nullable time column.
func optionalTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func scanToken(r rowScanner) (releases.Token, error) {
	var (
		t                        releases.Token
		roles, envs              string
		created                  int64
		revoked, expires, usedAt sql.NullInt64
	)
	if err := r.Scan(&t.ID, &t.Name, &roles, &envs, &t.CreatedBy, &created, &revoked, &expires, &usedAt); err != nil {
		return releases.Token{}, err
	}
	t.ExpiresAt, t.LastUsedAt = optionalTime(expires), optionalTime(usedAt)
	if err := errors.Join(
		json.Unmarshal([]byte(roles), &t.Roles),
		json.Unmarshal([]byte(envs), &t.Environments),
	); err != nil {
		return releases.Token{}, fmt.Errorf("token %s: stored lists: %w", t.ID, err)
	}
	t.CreatedAt = fromNanos(created)
	if revoked.Valid {
		at := fromNanos(revoked.Int64)
		t.RevokedAt = &at
	}
	return t, nil
}

// nonNil makes empty lists encode as [] rather than null, in the table and
// in event details alike.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CreateToken stores t with the SHA-256 hash of its secret and records
// "token.issued" (whose details never include the hash). An existing ID or
// hash is releases.ErrConflict.
func (db *DB) CreateToken(ctx context.Context, actor releases.Actor, t releases.Token, secretHash []byte) error {
	switch {
	case t.ID == "":
		return fmt.Errorf("%w: token needs an id", releases.ErrInvalidInput)
	case len(secretHash) != sha256.Size:
		return fmt.Errorf("%w: token %s: secret hash is %d bytes, want a SHA-256 (%d)", releases.ErrInvalidInput, t.ID, len(secretHash), sha256.Size)
	case t.RevokedAt != nil:
		return fmt.Errorf("%w: token %s: a token is issued unrevoked", releases.ErrInvalidInput, t.ID)
	}
	for _, r := range t.Roles {
		if !r.Valid() {
			return fmt.Errorf("%w: token %s: unknown role %q", releases.ErrInvalidInput, t.ID, r)
		}
	}
	createdAt, ok := db.timeOrNow(t.CreatedAt)
	if !ok {
		return fmt.Errorf("%w: token %s: creation time %s out of range", releases.ErrInvalidInput, t.ID, t.CreatedAt)
	}
	var expires sql.NullInt64
	if t.ExpiresAt != nil {
		at, ok := storableTime(*t.ExpiresAt)
		if !ok || !at.After(createdAt) {
			return fmt.Errorf("%w: token %s: expiry %s must be after its creation and representable", releases.ErrInvalidInput, t.ID, t.ExpiresAt)
		}
		t.ExpiresAt = &at
		expires = sql.NullInt64{Int64: toNanos(at), Valid: true}
	}
	if t.LastUsedAt != nil {
		return fmt.Errorf("%w: token %s: a token is issued unused", releases.ErrInvalidInput, t.ID)
	}
	roles, envs := nonNil(t.Roles), nonNil(t.Environments)
	rolesJSON, err := json.Marshal(roles)
	if err != nil {
		return fmt.Errorf("token %s: %w", t.ID, err)
	}
	envsJSON, err := json.Marshal(envs)
	if err != nil {
		return fmt.Errorf("token %s: %w", t.ID, err)
	}

	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO tokens (id, name, roles, environments, secret_hash, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			t.ID, t.Name, string(rolesJSON), string(envsJSON), hex.EncodeToString(secretHash), t.CreatedBy, toNanos(createdAt), expires)
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, releases.ActionTokenIssued, t.ID, struct {
			Name         string          `json:"name"`
			Roles        []releases.Role `json:"roles"`
			Environments []string        `json:"environments"`
			ExpiresAt    *time.Time      `json:"expiresAt,omitempty"`
		}{t.Name, roles, envs, t.ExpiresAt})
	})
	if err := db.translate(err); errors.Is(err, releases.ErrConflict) {
		return fmt.Errorf("token %s: id or secret already issued: %w", t.ID, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: create token %s: %w", t.ID, err)
	}
	return nil
}

// TokenByHash finds a token by the SHA-256 of its secret; revoked tokens
// are returned too, and the caller checks RevokedAt.
func (db *DB) TokenByHash(ctx context.Context, secretHash []byte) (releases.Token, error) {
	t, err := scanToken(db.sql.QueryRowContext(ctx, db.q(`SELECT `+tokenColumns+` FROM tokens WHERE secret_hash = ?`),
		hex.EncodeToString(secretHash)))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// No hash in the message: it is as good as the secret to a log reader
		// with database access.
		return releases.Token{}, fmt.Errorf("token: %w", releases.ErrNotFound)
	case err != nil:
		return releases.Token{}, fmt.Errorf("sqlstore: token by hash: %w", db.translate(err))
	}
	return t, nil
}

// RevokeToken marks a token revoked and records "token.revoked";
// releases.ErrNotFound if unknown. Revoking a revoked token changes and
// records nothing.
func (db *DB) RevokeToken(ctx context.Context, actor releases.Actor, id string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		var (
			name    string
			revoked sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, db.q(`SELECT name, revoked_at FROM tokens WHERE id = ?`), id).Scan(&name, &revoked)
		if err != nil {
			return err
		}
		if revoked.Valid {
			return nil
		}
		now := db.now()
		// "AND revoked_at IS NULL" makes a concurrent revoke on a database
		// with several writers (PostgreSQL) update nothing here instead of
		// recording a second event.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`), toNanos(now), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.recordEvent(ctx, tx, now, actor, releases.ActionTokenRevoked, id, struct {
			Name string `json:"name"`
		}{name})
	})
	if err := db.translate(err); errors.Is(err, releases.ErrNotFound) {
		return fmt.Errorf("token %s: %w", id, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: revoke token %s: %w", id, err)
	}
	return nil
}

// CountTokens counts all tokens ever issued, revoked or not.
func (db *DB) CountTokens(ctx context.Context) (int, error) {
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count tokens: %w", db.translate(err))
	}
	return n, nil
}

// ListTokens returns every token, revoked and expired ones included,
// ordered by creation time, then id.
func (db *DB) ListTokens(ctx context.Context) ([]releases.Token, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list tokens: %w", db.translate(err))
	}
	defer rows.Close()
	out := []releases.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list tokens: %w", db.translate(err))
	}
	return out, nil
}

// TouchToken moves a token's last use forward to at; it never moves it
// back, and records no event.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	at, ok := storableTime(at)
	if !ok {
		return fmt.Errorf("%w: token %s: last use %s out of range", releases.ErrInvalidInput, id, at)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`UPDATE tokens SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`), toNanos(at), id, toNanos(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: touch token %s: %w", id, db.translate(err))
	}
	return nil
}
