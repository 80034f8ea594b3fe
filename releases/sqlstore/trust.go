package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases"
)

const trustKeyColumns = `id, public_key_pem, algorithm, comment, created_by, created_at, revoked_at, revoked_by`

func scanTrustKey(r rowScanner) (releases.TrustKey, error) {
	var (
		k       releases.TrustKey
		created int64
		revoked sql.NullInt64
	)
	if err := r.Scan(&k.ID, &k.PublicKeyPEM, &k.Algorithm, &k.Comment, &k.CreatedBy, &created, &revoked, &k.RevokedBy); err != nil {
		return releases.TrustKey{}, err
	}
	k.CreatedAt = fromNanos(created)
	if revoked.Valid {
		at := fromNanos(revoked.Int64)
		k.RevokedAt = &at
	}
	return k, nil
}

// AddTrustKey stores k and records "trust.key.added". An ID already taken,
// by a live or a revoked key, is releases.ErrConflict. The key material is
// the caller's to parse (package signing); the store only refuses keys
// that could not name or describe anything.
func (db *DB) AddTrustKey(ctx context.Context, actor releases.Actor, k releases.TrustKey) error {
	switch {
	case k.ID == "":
		return fmt.Errorf("%w: trust key needs an id", releases.ErrInvalidInput)
	case k.PublicKeyPEM == "" || k.Algorithm == "":
		return fmt.Errorf("%w: trust key %s needs a public key and its algorithm", releases.ErrInvalidInput, k.ID)
	case k.RevokedAt != nil || k.RevokedBy != "":
		return fmt.Errorf("%w: trust key %s: a key is added unrevoked", releases.ErrInvalidInput, k.ID)
	}
	createdAt, ok := db.timeOrNow(k.CreatedAt)
	if !ok {
		return fmt.Errorf("%w: trust key %s: creation time %s out of range", releases.ErrInvalidInput, k.ID, k.CreatedAt)
	}

	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO trust_keys (id, public_key_pem, algorithm, comment, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`),
			k.ID, k.PublicKeyPEM, k.Algorithm, k.Comment, k.CreatedBy, toNanos(createdAt))
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, releases.ActionTrustKeyAdded, k.ID, struct {
			Algorithm       string `json:"algorithm"`
			Comment         string `json:"comment"`
			PublicKeySHA256 string `json:"publicKeySha256"`
		}{k.Algorithm, k.Comment, sha256Hex(k.PublicKeyPEM)})
	})
	if err := db.translate(err); errors.Is(err, releases.ErrConflict) {
		return fmt.Errorf("trust key %s: id already taken: %w", k.ID, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: add trust key %s: %w", k.ID, err)
	}
	return nil
}

// TrustKeys lists every key, revoked ones included, ordered by ID.
func (db *DB) TrustKeys(ctx context.Context) ([]releases.TrustKey, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+trustKeyColumns+` FROM trust_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: trust keys: %w", db.translate(err))
	}
	defer rows.Close()
	var out []releases.TrustKey
	for rows.Next() {
		k, err := scanTrustKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: trust keys: %w", db.translate(err))
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: trust keys: %w", db.translate(err))
	}
	return out, nil
}

// RevokeTrustKey marks a key revoked by actor and records
// "trust.key.revoked"; releases.ErrNotFound if unknown. Revoking a revoked
// key changes and records nothing.
func (db *DB) RevokeTrustKey(ctx context.Context, actor releases.Actor, id string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		var revoked sql.NullInt64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT revoked_at FROM trust_keys WHERE id = ?`), id).Scan(&revoked); err != nil {
			return err
		}
		if revoked.Valid {
			return nil
		}
		now := db.now()
		// As in RevokeToken: with several writers, the loser of a race
		// updates nothing and records nothing.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE trust_keys SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL`),
			toNanos(now), actor.Name, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.recordEvent(ctx, tx, now, actor, releases.ActionTrustKeyRevoked, id, nil)
	})
	if err := db.translate(err); errors.Is(err, releases.ErrNotFound) {
		return fmt.Errorf("trust key %s: %w", id, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: revoke trust key %s: %w", id, err)
	}
	return nil
}

// policySubject is the subject of "trust.policy.set": there is one policy.
const policySubject = "policy"

// SetTrustPolicy stores doc, byte for byte, as the next policy version and
// records "trust.policy.set". doc must be JSON; what it says is the
// caller's business (signing.ParsePolicy).
//
// The next version is read and written in one transaction. SQLite runs one
// writer at a time, so versions are 1, 2, 3... without gaps or repeats; the
// primary key makes a repeat impossible on any dialect, and a dialect with
// concurrent writers must serialise this like recordEvent's inserts, or
// the loser of a race gets releases.ErrConflict.
func (db *DB) SetTrustPolicy(ctx context.Context, actor releases.Actor, doc json.RawMessage) (releases.PolicyVersion, error) {
	if err := checkJSON(doc); err != nil {
		return releases.PolicyVersion{}, fmt.Errorf("trust policy: %w", err)
	}
	p := releases.PolicyVersion{
		Document:  bytes.Clone(doc),
		CreatedBy: actor.Name,
		CreatedAt: fromNanos(toNanos(db.now())),
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM trust_policies`).Scan(&p.Version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO trust_policies (version, document, created_by, created_at) VALUES (?, ?, ?, ?)`),
			p.Version, string(p.Document), p.CreatedBy, toNanos(p.CreatedAt))
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, p.CreatedAt, actor, releases.ActionTrustPolicySet, policySubject, struct {
			Version        int64  `json:"version"`
			DocumentSHA256 string `json:"documentSha256"`
		}{p.Version, sha256Hex(p.Document)})
	})
	if err != nil {
		return releases.PolicyVersion{}, fmt.Errorf("sqlstore: set trust policy: %w", db.translate(err))
	}
	return p, nil
}

// TrustPolicy returns the highest policy version; releases.ErrNotFound if
// none was ever set.
func (db *DB) TrustPolicy(ctx context.Context) (releases.PolicyVersion, error) {
	var (
		p       releases.PolicyVersion
		doc     string
		created int64
	)
	err := db.sql.QueryRowContext(ctx, `SELECT version, document, created_by, created_at
		FROM trust_policies ORDER BY version DESC LIMIT 1`).Scan(&p.Version, &doc, &p.CreatedBy, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return releases.PolicyVersion{}, fmt.Errorf("trust policy: %w", releases.ErrNotFound)
	case err != nil:
		return releases.PolicyVersion{}, fmt.Errorf("sqlstore: trust policy: %w", db.translate(err))
	}
	p.Document = json.RawMessage(doc)
	p.CreatedAt = fromNanos(created)
	return p, nil
}
