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

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
)

// Tokens is the persistence of tokens (access.Store): db.Tokens().
type Tokens struct{ db *DB }

var _ access.Store = (*Tokens)(nil)

// Tokens returns the token store.
func (db *DB) Tokens() access.Store { return &Tokens{db} }

const tokenColumns = `id, name, roles, environments, created_by, created_at, revoked_at, expires_at, last_used_at, issuer, subject`

// optionalTime reads a nullable time column.
func optionalTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func scanToken(r rowScanner) (access.Token, error) {
	var (
		t                        access.Token
		roles, envs              string
		created                  int64
		revoked, expires, usedAt sql.NullInt64
	)
	if err := r.Scan(&t.ID, &t.Name, &roles, &envs, &t.CreatedBy, &created, &revoked, &expires, &usedAt, &t.Issuer, &t.Subject); err != nil {
		return access.Token{}, err
	}
	t.ExpiresAt, t.LastUsedAt = optionalTime(expires), optionalTime(usedAt)
	if err := errors.Join(
		json.Unmarshal([]byte(roles), &t.Roles),
		json.Unmarshal([]byte(envs), &t.Environments),
	); err != nil {
		return access.Token{}, fmt.Errorf("token %s: stored lists: %w", t.ID, err)
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
// hash is errdef.ErrConflict.
func (a *Tokens) CreateToken(ctx context.Context, actor access.Actor, t access.Token, secretHash []byte) error {
	if t.Issuer != "" || t.Subject != "" {
		return fmt.Errorf("%w: token %s: a session is started (StartSession), not created", errdef.ErrInvalidInput, t.ID)
	}
	_, err := a.createToken(ctx, actor, t, secretHash, false, nil, nil)
	return err
}

// CreateRecoveryToken is CreateToken recording "token.recovered", with
// the host user and host of the recovery in its details.
func (a *Tokens) CreateRecoveryToken(ctx context.Context, actor access.Actor, t access.Token, secretHash []byte, r access.Recovery) error {
	if t.Issuer != "" || t.Subject != "" {
		return fmt.Errorf("%w: token %s: a session is started (StartSession), not created", errdef.ErrInvalidInput, t.ID)
	}
	_, err := a.createToken(ctx, actor, t, secretHash, false, nil, &r)
	return err
}

// CreateFirstToken is CreateToken where no token was ever issued, and
// nothing (false) otherwise. The count and the insert share a transaction
// under firstTokenLock, so servers starting together on an empty database
// issue one token between them.
func (a *Tokens) CreateFirstToken(ctx context.Context, actor access.Actor, t access.Token, secretHash []byte) (bool, error) {
	if t.Issuer != "" || t.Subject != "" {
		return false, fmt.Errorf("%w: token %s: a session is started (StartSession), not created", errdef.ErrInvalidInput, t.ID)
	}
	return a.createToken(ctx, actor, t, secretHash, true, nil, nil)
}

// session is what StartSession adds to createToken: the provider, and
// the sessions to end.
type session struct {
	provider string
	end      []string
}

func (a *Tokens) createToken(ctx context.Context, actor access.Actor, t access.Token, secretHash []byte, onlyFirst bool, sess *session, recovery *access.Recovery) (bool, error) {
	db := a.db
	switch {
	case t.ID == "":
		return false, fmt.Errorf("%w: token needs an id", errdef.ErrInvalidInput)
	case len(secretHash) != sha256.Size:
		return false, fmt.Errorf("%w: token %s: secret hash is %d bytes, want a SHA-256 (%d)", errdef.ErrInvalidInput, t.ID, len(secretHash), sha256.Size)
	case t.RevokedAt != nil:
		return false, fmt.Errorf("%w: token %s: a token is issued unrevoked", errdef.ErrInvalidInput, t.ID)
	}
	for _, r := range t.Roles {
		if !r.Valid() {
			return false, fmt.Errorf("%w: token %s: unknown role %q", errdef.ErrInvalidInput, t.ID, r)
		}
	}
	createdAt, ok := db.timeOrNow(t.CreatedAt)
	if !ok {
		return false, fmt.Errorf("%w: token %s: creation time %s out of range", errdef.ErrInvalidInput, t.ID, t.CreatedAt)
	}
	var expires sql.NullInt64
	if t.ExpiresAt != nil {
		at, ok := storableTime(*t.ExpiresAt)
		if !ok || !at.After(createdAt) {
			return false, fmt.Errorf("%w: token %s: expiry %s must be after its creation and representable", errdef.ErrInvalidInput, t.ID, t.ExpiresAt)
		}
		t.ExpiresAt = &at
		expires = sql.NullInt64{Int64: toNanos(at), Valid: true}
	}
	if t.LastUsedAt != nil {
		return false, fmt.Errorf("%w: token %s: a token is issued unused", errdef.ErrInvalidInput, t.ID)
	}
	roles, envs := nonNil(t.Roles), nonNil(t.Environments)
	rolesJSON, err := json.Marshal(roles)
	if err != nil {
		return false, fmt.Errorf("token %s: %w", t.ID, err)
	}
	envsJSON, err := json.Marshal(envs)
	if err != nil {
		return false, fmt.Errorf("token %s: %w", t.ID, err)
	}

	created := false
	err = db.write(ctx, func(tx *sql.Tx) error {
		created = false
		if onlyFirst {
			if err := db.lock(ctx, tx, firstTokenLock); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n); err != nil || n > 0 {
				return err
			}
		}
		created = true
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO tokens (id, name, roles, environments, secret_hash, created_by, created_at, expires_at, issuer, subject)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			t.ID, t.Name, string(rolesJSON), string(envsJSON), hex.EncodeToString(secretHash), t.CreatedBy, toNanos(createdAt), expires, t.Issuer, t.Subject)
		if err != nil {
			return err
		}
		if sess != nil {
			return a.startSession(ctx, tx, actor, t, roles, envs, *sess)
		}
		if recovery != nil {
			return db.recordEvent(ctx, tx, db.now(), actor, access.ActionTokenRecovered, t.ID, struct {
				Name     string        `json:"name"`
				Roles    []access.Role `json:"roles"`
				HostUser string        `json:"hostUser"`
				Host     string        `json:"host"`
			}{t.Name, roles, recovery.HostUser, recovery.Host})
		}
		return db.recordEvent(ctx, tx, db.now(), actor, access.ActionTokenIssued, t.ID, struct {
			Name         string        `json:"name"`
			Roles        []access.Role `json:"roles"`
			Environments []string      `json:"environments"`
			ExpiresAt    *time.Time    `json:"expiresAt,omitempty"`
		}{t.Name, roles, envs, t.ExpiresAt})
	})
	if err := db.translate(err); errors.Is(err, errdef.ErrConflict) {
		return false, fmt.Errorf("token %s: id or secret already issued: %w", t.ID, err)
	} else if err != nil {
		return false, fmt.Errorf("sqlstore: create token %s: %w", t.ID, err)
	}
	return created, nil
}

// TokenByHash finds a token by the SHA-256 of its secret; revoked tokens
// are returned too, and the caller checks RevokedAt.
func (a *Tokens) TokenByHash(ctx context.Context, secretHash []byte) (access.Token, error) {
	db := a.db
	t, err := scanToken(db.sql.QueryRowContext(ctx, db.q(`SELECT `+tokenColumns+` FROM tokens WHERE secret_hash = ?`),
		hex.EncodeToString(secretHash)))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// No hash in the message: it is as good as the secret to a log reader
		// with database access.
		return access.Token{}, fmt.Errorf("token: %w", errdef.ErrNotFound)
	case err != nil:
		return access.Token{}, fmt.Errorf("sqlstore: token by hash: %w", db.translate(err))
	}
	return t, nil
}

// RevokeToken marks a token revoked and records "token.revoked";
// errdef.ErrNotFound if unknown. Revoking a revoked token changes and
// records nothing.
func (a *Tokens) RevokeToken(ctx context.Context, actor access.Actor, id string) error {
	db := a.db
	err := db.write(ctx, func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, db.q(`SELECT name FROM tokens WHERE id = ?`), id).Scan(&name)
		if err != nil {
			return err
		}
		now := db.now()
		// "AND revoked_at IS NULL" makes a second revoke, or a concurrent
		// one on a database with several writers (PostgreSQL), update
		// nothing and record nothing.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`), toNanos(now), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.recordEvent(ctx, tx, now, actor, access.ActionTokenRevoked, id, struct {
			Name string `json:"name"`
		}{name})
	})
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("token %s: %w", id, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: revoke token %s: %w", id, err)
	}
	return nil
}

// CountTokens counts all tokens ever issued, revoked or not.
func (a *Tokens) CountTokens(ctx context.Context) (int, error) {
	db := a.db
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count tokens: %w", db.translate(err))
	}
	return n, nil
}

// ListTokens returns every token, revoked and expired ones included,
// ordered by creation time, then id.
func (a *Tokens) ListTokens(ctx context.Context) ([]access.Token, error) {
	db := a.db
	rows, err := db.sql.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list tokens: %w", db.translate(err))
	}
	defer rows.Close()
	out := []access.Token{}
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
func (a *Tokens) TouchToken(ctx context.Context, id string, at time.Time) error {
	db := a.db
	at, ok := storableTime(at)
	if !ok {
		return fmt.Errorf("%w: token %s: last use %s out of range", errdef.ErrInvalidInput, id, at)
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

// StartSession stores a person's session token and ends the sessions
// listed in end, in one transaction: "session.started", then one
// "session.ended" per session it revoked.
func (a *Tokens) StartSession(ctx context.Context, actor access.Actor, t access.Token, secretHash []byte, provider string, end []string) error {
	switch {
	case t.Issuer == "" || t.Subject == "":
		return fmt.Errorf("%w: session %s needs its issuer and subject", errdef.ErrInvalidInput, t.ID)
	case t.ExpiresAt == nil:
		return fmt.Errorf("%w: session %s needs an expiry", errdef.ErrInvalidInput, t.ID)
	}
	_, err := a.createToken(ctx, actor, t, secretHash, false, &session{provider: provider, end: end}, nil)
	return err
}

// startSession records the start of session t and ends the sessions of
// sess.end, inside createToken's transaction.
func (a *Tokens) startSession(ctx context.Context, tx *sql.Tx, actor access.Actor, t access.Token, roles []access.Role, envs []string, sess session) error {
	db := a.db
	now := db.now()
	if err := db.recordEvent(ctx, tx, now, actor, access.ActionSessionStarted, t.ID, struct {
		Name         string        `json:"name"`
		Provider     string        `json:"provider"`
		Issuer       string        `json:"issuer"`
		Subject      string        `json:"subject"`
		Roles        []access.Role `json:"roles"`
		Environments []string      `json:"environments"`
		ExpiresAt    *time.Time    `json:"expiresAt"`
		Ended        []string      `json:"ended"`
	}{t.Name, sess.provider, t.Issuer, t.Subject, roles, envs, t.ExpiresAt, nonNil(sess.end)}); err != nil {
		return err
	}
	for _, id := range sess.end {
		// Only the same person's sessions: a list naming another token
		// ends nothing.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE tokens SET revoked_at = ?
			WHERE id = ? AND issuer = ? AND subject = ? AND revoked_at IS NULL`), toNanos(now), id, t.Issuer, t.Subject)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			continue
		}
		if err := db.recordEvent(ctx, tx, now, actor, access.ActionSessionEnded, id, struct {
			Reason   string `json:"reason"`
			Provider string `json:"provider"`
			By       string `json:"by"`
		}{"a sign-in no longer grants all of its roles and environments", sess.provider, t.ID}); err != nil {
			return err
		}
	}
	return nil
}

// Sessions lists the sessions of one issuer and subject, oldest first.
func (a *Tokens) Sessions(ctx context.Context, issuer, subject string) ([]access.Token, error) {
	db := a.db
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+tokenColumns+` FROM tokens WHERE issuer = ? AND subject = ? ORDER BY created_at, id`), issuer, subject)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: sessions: %w", db.translate(err))
	}
	defer rows.Close()
	out := []access.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: sessions: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: sessions: %w", db.translate(err))
	}
	return out, nil
}

// RecordRefusedSignIn records "session.refused"; the subject of the event
// is the identity, since no token exists.
func (a *Tokens) RecordRefusedSignIn(ctx context.Context, actor access.Actor, refusal access.SignInRefusal) error {
	db := a.db
	if actor.Issuer == "" || actor.Subject == "" {
		return fmt.Errorf("%w: a refused sign-in names the issuer and subject", errdef.ErrInvalidInput)
	}
	refusal.Values = nonNil(refusal.Values)
	err := db.write(ctx, func(tx *sql.Tx) error {
		return db.recordEvent(ctx, tx, db.now(), actor, access.ActionSignInRefused, actor.Issuer+"#"+actor.Subject, refusal)
	})
	if err != nil {
		return fmt.Errorf("sqlstore: record refused sign-in: %w", db.translate(err))
	}
	return nil
}
