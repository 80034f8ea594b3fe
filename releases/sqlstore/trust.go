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

// Trust is the persistence of trusted keys and policy versions
// (trust.Store): db.Trust().
type Trust struct{ db *DB }

var _ trust.Store = (*Trust)(nil)

// Trust returns the trust store.
func (db *DB) Trust() trust.Store { return &Trust{db} }

const trustKeyColumns = `id, public_key_pem, algorithm, comment, created_by, created_at, revoked_at, revoked_by`

func scanTrustKey(r rowScanner) (trust.TrustKey, error) {
	var (
		k       trust.TrustKey
		created int64
		revoked sql.NullInt64
	)
	if err := r.Scan(&k.ID, &k.PublicKeyPEM, &k.Algorithm, &k.Comment, &k.CreatedBy, &created, &revoked, &k.RevokedBy); err != nil {
		return trust.TrustKey{}, err
	}
	k.CreatedAt = fromNanos(created)
	if revoked.Valid {
		at := fromNanos(revoked.Int64)
		k.RevokedAt = &at
	}
	return k, nil
}

// AddTrustKey stores k and records "trust.key.added". An ID already taken,
// by a live or a revoked key, is errdef.ErrConflict. The key material is
// the caller's to parse (package signing); the store only refuses keys
// that could not name or describe anything.
func (x *Trust) AddTrustKey(ctx context.Context, actor access.Actor, k trust.TrustKey) error {
	db := x.db
	switch {
	case k.ID == "":
		return fmt.Errorf("%w: trust key needs an id", errdef.ErrInvalidInput)
	case k.PublicKeyPEM == "" || k.Algorithm == "":
		return fmt.Errorf("%w: trust key %s needs a public key and its algorithm", errdef.ErrInvalidInput, k.ID)
	case k.RevokedAt != nil || k.RevokedBy != "":
		return fmt.Errorf("%w: trust key %s: a key is added unrevoked", errdef.ErrInvalidInput, k.ID)
	}
	createdAt, ok := db.timeOrNow(k.CreatedAt)
	if !ok {
		return fmt.Errorf("%w: trust key %s: creation time %s out of range", errdef.ErrInvalidInput, k.ID, k.CreatedAt)
	}

	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := db.claimSignerID(ctx, tx, k.ID, signerKey); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO trust_keys (id, public_key_pem, algorithm, comment, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`),
			k.ID, k.PublicKeyPEM, k.Algorithm, k.Comment, k.CreatedBy, toNanos(createdAt))
		if err != nil {
			return err
		}
		if err := db.raiseTrustRevision(ctx, tx); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, trust.ActionTrustKeyAdded, k.ID, struct {
			Algorithm       string `json:"algorithm"`
			Comment         string `json:"comment"`
			PublicKeySHA256 string `json:"publicKeySha256"`
		}{k.Algorithm, k.Comment, sha256Hex(k.PublicKeyPEM)})
	})
	if err := db.translate(err); errors.Is(err, errdef.ErrConflict) {
		return fmt.Errorf("trust key %s: %w", k.ID, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: add trust key %s: %w", k.ID, err)
	}
	return nil
}

// TrustKeys lists every key, revoked ones included, ordered by ID.
func (x *Trust) TrustKeys(ctx context.Context) ([]trust.TrustKey, error) {
	return trustReads{x.db, x.db.sql}.TrustKeys(ctx)
}

func (r trustReads) TrustKeys(ctx context.Context) ([]trust.TrustKey, error) {
	return queryAll(ctx, r.db, r.q, "trust keys", `SELECT `+trustKeyColumns+` FROM trust_keys ORDER BY id`, scanTrustKey)
}

// RevokeTrustKey marks a key revoked by actor and records
// "trust.key.revoked"; errdef.ErrNotFound if unknown. Revoking a revoked
// key changes and records nothing.
func (x *Trust) RevokeTrustKey(ctx context.Context, actor access.Actor, id string) error {
	return x.db.revokeOne(ctx, actor, "trust key", "trust_keys", id, trust.ActionTrustKeyRevoked)
}

// policySubject is the subject of "trust.policy.set": there is one policy.
const policySubject = "policy"

// SetTrustPolicy stores doc, byte for byte, as the next policy version and
// records "trust.policy.set". doc must be JSON; what it says is the
// caller's business (signing.ParsePolicy).
//
// The next version is read and written in one transaction, which SQLite
// runs alone and PostgreSQL under the policy's lock (policyLock), so
// versions are 1, 2, 3... without gaps or repeats, whichever process sets
// them; the primary key makes a repeat impossible either way.
func (x *Trust) SetTrustPolicy(ctx context.Context, actor access.Actor, doc json.RawMessage) (trust.PolicyVersion, error) {
	db := x.db
	if err := checkJSON(doc); err != nil {
		return trust.PolicyVersion{}, fmt.Errorf("trust policy: %w", err)
	}
	p := trust.PolicyVersion{
		Document:  bytes.Clone(doc),
		CreatedBy: actor.Name,
		CreatedAt: fromNanos(toNanos(db.now())),
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := db.lock(ctx, tx, policyLock); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM trust_policies`).Scan(&p.Version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO trust_policies (version, document, created_by, created_at) VALUES (?, ?, ?, ?)`),
			p.Version, string(p.Document), p.CreatedBy, toNanos(p.CreatedAt))
		if err != nil {
			return err
		}
		if err := db.raiseTrustRevision(ctx, tx); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, p.CreatedAt, actor, trust.ActionTrustPolicySet, policySubject, struct {
			Version        int64  `json:"version"`
			DocumentSHA256 string `json:"documentSha256"`
		}{p.Version, sha256Hex(p.Document)})
	})
	if err != nil {
		return trust.PolicyVersion{}, fmt.Errorf("sqlstore: set trust policy: %w", db.translate(err))
	}
	return p, nil
}

// TrustPolicy returns the highest policy version; errdef.ErrNotFound if
// none was ever set.
func (x *Trust) TrustPolicy(ctx context.Context) (trust.PolicyVersion, error) {
	return trustReads{x.db, x.db.sql}.TrustPolicy(ctx)
}

func (r trustReads) TrustPolicy(ctx context.Context) (trust.PolicyVersion, error) {
	db := r.db
	var (
		p       trust.PolicyVersion
		doc     string
		created int64
	)
	err := r.q.QueryRowContext(ctx, `SELECT version, document, created_by, created_at
		FROM trust_policies ORDER BY version DESC LIMIT 1`).Scan(&p.Version, &doc, &p.CreatedBy, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return trust.PolicyVersion{}, fmt.Errorf("trust policy: %w", errdef.ErrNotFound)
	case err != nil:
		return trust.PolicyVersion{}, fmt.Errorf("sqlstore: trust policy: %w", db.translate(err))
	}
	p.Document = json.RawMessage(doc)
	p.CreatedAt = fromNanos(created)
	return p, nil
}

// raiseTrustRevision raises the trust revision in tx, the transaction of
// a change of trust, before its event is recorded (the revision's row is
// taken after the change's own locks and before the audit log's).
func (db *DB) raiseTrustRevision(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO trust_revision (id, revision) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET revision = trust_revision.revision + 1`)
	return err
}

// TrustRevision returns the trust revision as last committed.
func (x *Trust) TrustRevision(ctx context.Context) (int64, error) {
	return trustReads{x.db, x.db.sql}.TrustRevision(ctx)
}

// trustReads reads the trust through q: the database, or the transaction
// of a decision (catalog.AdmissionReader), so that a decision reads the
// trust it is made with where it reads the rest.
type trustReads struct {
	db *DB
	q  querier
}

var _ trust.Reader = trustReads{}

func (r trustReads) TrustRevision(ctx context.Context) (int64, error) {
	var rev int64
	err := r.q.QueryRowContext(ctx, `SELECT revision FROM trust_revision WHERE id = 1`).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil // no change of trust yet
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: trust revision: %w", r.db.translate(err))
	}
	return rev, nil
}
