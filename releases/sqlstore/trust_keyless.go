package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/trust"
)

// Kinds of signer in trust_signers, the one namespace of signer ids.
const (
	signerKey      = "key"
	signerIdentity = "identity"
)

// claimSignerID takes id for a signer of kind in tx. An id taken by any
// signer is errdef.ErrConflict naming the kind that holds it; the primary
// key decides between two transactions claiming it at once.
func (db *DB) claimSignerID(ctx context.Context, tx *sql.Tx, id, kind string) error {
	var holder string
	err := tx.QueryRowContext(ctx, db.q(`SELECT kind FROM trust_signers WHERE id = ?`), id).Scan(&holder)
	switch {
	case err == nil:
		return fmt.Errorf("%w: signer id already taken by a %s", errdef.ErrConflict, holder)
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO trust_signers (id, kind) VALUES (?, ?)`), id, kind)
	return err
}

const trustRootColumns = `r.id, r.version, v.document, v.created_by, v.created_at, r.revoked_at, r.revoked_by`

// trustRootCurrent joins each root to its current version.
const trustRootCurrent = `FROM trust_roots r JOIN trust_root_versions v ON v.id = r.id AND v.version = r.version`

func scanTrustRoot(r rowScanner) (trust.TrustedRoot, error) {
	var (
		t       trust.TrustedRoot
		doc     string
		created int64
		revoked sql.NullInt64
	)
	if err := r.Scan(&t.ID, &t.Version, &doc, &t.CreatedBy, &created, &revoked, &t.RevokedBy); err != nil {
		return trust.TrustedRoot{}, err
	}
	t.Document = json.RawMessage(doc)
	t.CreatedAt = fromNanos(created)
	if revoked.Valid {
		at := fromNanos(revoked.Int64)
		t.RevokedAt = &at
	}
	return t, nil
}

// trustedRoot reads the current version of root id in tx.
func (db *DB) trustedRoot(ctx context.Context, tx *sql.Tx, id string) (trust.TrustedRoot, bool, error) {
	r, err := scanTrustRoot(tx.QueryRowContext(ctx, db.q(`SELECT `+trustRootColumns+` `+trustRootCurrent+` WHERE r.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return trust.TrustedRoot{}, false, nil
	}
	return r, err == nil, err
}

// ModifyTrustedRoot lets fn decide the next document of root id, under
// the root's lock (rootLock) on a dialect with several writers: the
// decision is about a row that may not exist yet.
func (x *Trust) ModifyTrustedRoot(ctx context.Context, actor access.Actor, id string, fn func(cur trust.TrustedRoot, found bool) (json.RawMessage, error)) (trust.TrustedRoot, error) {
	db := x.db
	if id == "" {
		return trust.TrustedRoot{}, fmt.Errorf("%w: trusted root needs an id", errdef.ErrInvalidInput)
	}
	var (
		stored trust.TrustedRoot
		fnErr  error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		stored, fnErr = trust.TrustedRoot{}, nil
		if err := db.lock(ctx, tx, rootLock(id)); err != nil {
			return err
		}
		cur, found, err := db.trustedRoot(ctx, tx, id)
		if err != nil {
			return err
		}
		doc, err := fn(cur, found)
		if err != nil {
			fnErr = err
			return err
		}
		if doc == nil {
			stored = cur
			return nil
		}
		if err := checkJSON(doc); err != nil {
			fnErr = fmt.Errorf("trusted root %s: %w", id, err)
			return fnErr
		}
		stored = trust.TrustedRoot{
			ID: id, Version: cur.Version + 1, Document: bytes.Clone(doc),
			CreatedBy: actor.Name, CreatedAt: fromNanos(toNanos(db.now())),
		}
		action := trust.ActionTrustRootReplaced
		if found {
			_, err = tx.ExecContext(ctx, db.q(`UPDATE trust_roots SET version = ? WHERE id = ?`), stored.Version, id)
		} else {
			action = trust.ActionTrustRootAdded
			_, err = tx.ExecContext(ctx, db.q(`INSERT INTO trust_roots (id, version) VALUES (?, ?)`), id, stored.Version)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO trust_root_versions (id, version, document, created_by, created_at) VALUES (?, ?, ?, ?, ?)`),
			id, stored.Version, string(stored.Document), stored.CreatedBy, toNanos(stored.CreatedAt))
		if err != nil {
			return err
		}
		if err := db.raiseTrustRevision(ctx, tx); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, stored.CreatedAt, actor, action, id, struct {
			Version        int64  `json:"version"`
			DocumentSHA256 string `json:"documentSha256"`
		}{stored.Version, sha256Hex(stored.Document)})
	})
	if fnErr != nil {
		return trust.TrustedRoot{}, fnErr
	}
	if err != nil {
		return trust.TrustedRoot{}, fmt.Errorf("sqlstore: trusted root %s: %w", id, db.translate(err))
	}
	return stored, nil
}

// TrustedRoots lists the current version of every root, ordered by ID.
func (x *Trust) TrustedRoots(ctx context.Context) ([]trust.TrustedRoot, error) {
	return trustReads{x.db, x.db.sql}.TrustedRoots(ctx)
}

func (r trustReads) TrustedRoots(ctx context.Context) ([]trust.TrustedRoot, error) {
	return queryAll(ctx, r.db, r.q, "trusted roots", `SELECT `+trustRootColumns+` `+trustRootCurrent+` ORDER BY r.id`, scanTrustRoot)
}

// queryAll reads every row q selects with scan; an empty list, not nil,
// when there are none.
func queryAll[T any](ctx context.Context, db *DB, from querier, what, q string, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := from.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, db.translate(err))
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: %s: %w", what, db.translate(err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, db.translate(err))
	}
	return out, nil
}

// RevokeTrustedRoot marks root id revoked, under its lock, so that no
// identity is added to it in between (AddIdentity).
func (x *Trust) RevokeTrustedRoot(ctx context.Context, actor access.Actor, id string) error {
	return x.db.revokeOne(ctx, actor, "trusted root", "trust_roots", id, trust.ActionTrustRootRevoked, rootLock(id))
}

// revoke marks row id of table (a trust table: the trust revision is
// raised) revoked by actor and records action, once:
// as in RevokeToken, a second revoke, or the loser of a race, updates
// nothing and records nothing. sql.ErrNoRows if there is no such row.
func (db *DB) revoke(ctx context.Context, tx *sql.Tx, actor access.Actor, table, id, action string) error {
	var one int
	if err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM `+table+` WHERE id = ?`), id).Scan(&one); err != nil {
		return err
	}
	now := db.now()
	res, err := tx.ExecContext(ctx, db.q(`UPDATE `+table+` SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL`),
		toNanos(now), actor.Name, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	if err := db.raiseTrustRevision(ctx, tx); err != nil {
		return err
	}
	return db.recordEvent(ctx, tx, now, actor, action, id, nil)
}

const trustIdentityColumns = `id, root, issuer, subject, subject_regexp, claims, created_by, created_at, revoked_at, revoked_by`

func scanIdentity(r rowScanner) (trust.Identity, error) {
	var (
		id      trust.Identity
		claims  string
		created int64
		revoked sql.NullInt64
	)
	if err := r.Scan(&id.ID, &id.Root, &id.Issuer, &id.Subject, &id.SubjectRegexp, &claims, &id.CreatedBy, &created, &revoked, &id.RevokedBy); err != nil {
		return trust.Identity{}, err
	}
	if err := json.Unmarshal([]byte(claims), &id.Claims); err != nil {
		return trust.Identity{}, fmt.Errorf("identity %s: claims: %w", id.ID, err)
	}
	if id.Claims == nil {
		id.Claims = map[string]string{}
	}
	id.CreatedAt = fromNanos(created)
	if revoked.Valid {
		at := fromNanos(revoked.Int64)
		id.RevokedAt = &at
	}
	return id, nil
}

// AddIdentity stores id after rootOK accepts its root, read under the
// root's lock, and claims its signer id in the same transaction.
func (x *Trust) AddIdentity(ctx context.Context, actor access.Actor, id trust.Identity, rootOK func(trust.TrustedRoot, bool) error) error {
	db := x.db
	switch {
	case id.ID == "" || id.Root == "" || id.Issuer == "":
		return fmt.Errorf("%w: identity %q needs an id, a root and an issuer", errdef.ErrInvalidInput, id.ID)
	case (id.Subject == "") == (id.SubjectRegexp == ""):
		return fmt.Errorf("%w: identity %s needs a subject or a subject regexp, not both", errdef.ErrInvalidInput, id.ID)
	case id.RevokedAt != nil || id.RevokedBy != "":
		return fmt.Errorf("%w: identity %s: an identity is added unrevoked", errdef.ErrInvalidInput, id.ID)
	}
	createdAt, ok := db.timeOrNow(id.CreatedAt)
	if !ok {
		return fmt.Errorf("%w: identity %s: creation time %s out of range", errdef.ErrInvalidInput, id.ID, id.CreatedAt)
	}
	claims := id.Claims
	if claims == nil {
		claims = map[string]string{}
	}
	claimsJSON, err := json.Marshal(claims) // keys sorted: the same claims, the same text
	if err != nil {
		return fmt.Errorf("%w: identity %s: claims: %v", errdef.ErrInvalidInput, id.ID, err)
	}
	var fnErr error
	err = db.write(ctx, func(tx *sql.Tx) error {
		fnErr = nil
		if err := db.lock(ctx, tx, rootLock(id.Root)); err != nil {
			return err
		}
		r, found, err := db.trustedRoot(ctx, tx, id.Root)
		if err != nil {
			return err
		}
		if err := rootOK(r, found); err != nil {
			fnErr = err
			return err
		}
		if err := db.claimSignerID(ctx, tx, id.ID, signerIdentity); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO trust_identities (`+trustIdentityColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '')`),
			id.ID, id.Root, id.Issuer, id.Subject, id.SubjectRegexp, string(claimsJSON), id.CreatedBy, toNanos(createdAt))
		if err != nil {
			return err
		}
		if err := db.raiseTrustRevision(ctx, tx); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, trust.ActionTrustIdentityAdded, id.ID, struct {
			Root          string            `json:"root"`
			Issuer        string            `json:"issuer"`
			Subject       string            `json:"subject,omitempty"`
			SubjectRegexp string            `json:"subjectRegexp,omitempty"`
			Claims        map[string]string `json:"claims"`
		}{id.Root, id.Issuer, id.Subject, id.SubjectRegexp, claims})
	})
	if fnErr != nil {
		return fnErr
	}
	if err := db.translate(err); errors.Is(err, errdef.ErrConflict) {
		return fmt.Errorf("identity %s: %w", id.ID, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: add identity %s: %w", id.ID, err)
	}
	return nil
}

// Identities lists every identity, ordered by ID.
func (x *Trust) Identities(ctx context.Context) ([]trust.Identity, error) {
	return trustReads{x.db, x.db.sql}.Identities(ctx)
}

func (r trustReads) Identities(ctx context.Context) ([]trust.Identity, error) {
	return queryAll(ctx, r.db, r.q, "identities", `SELECT `+trustIdentityColumns+` FROM trust_identities ORDER BY id`, scanIdentity)
}

// RevokeIdentity marks an identity revoked.
func (x *Trust) RevokeIdentity(ctx context.Context, actor access.Actor, id string) error {
	return x.db.revokeOne(ctx, actor, "identity", "trust_identities", id, trust.ActionTrustIdentityRevoked)
}

// revokeOne revokes what (a key, an identity, a root) id in its table, in
// a transaction of its own that first takes locks.
func (db *DB) revokeOne(ctx context.Context, actor access.Actor, what, table, id, action string, locks ...string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := db.lock(ctx, tx, locks...); err != nil {
			return err
		}
		return db.revoke(ctx, tx, actor, table, id, action)
	})
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%s %s: %w", what, id, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: revoke %s %s: %w", what, id, err)
	}
	return nil
}
