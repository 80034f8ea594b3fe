package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

const evidenceColumns = `artifact_name, artifact_version, digest, artifact_digest, kind, format, media_type, size,
	key_id, predicate_type, predicate, created_by, created_at, keyless`

func scanEvidence(r rowScanner) (catalog.Evidence, error) {
	var (
		e                 catalog.Evidence
		d, artifactDigest string
		kind              string
		predicate         sql.NullString
		keyless           sql.NullString
		created           int64
	)
	if err := r.Scan(&e.ArtifactName, &e.ArtifactVersion, &d, &artifactDigest, &kind, &e.Format, &e.MediaType, &e.Size,
		&e.KeyID, &e.PredicateType, &predicate, &e.CreatedBy, &created, &keyless); err != nil {
		return catalog.Evidence{}, err
	}
	if keyless.Valid {
		e.Keyless = &signing.KeylessSigner{}
		if err := json.Unmarshal([]byte(keyless.String), e.Keyless); err != nil {
			return catalog.Evidence{}, fmt.Errorf("evidence %s: keyless signer: %w", d, err)
		}
	}
	e.Digest = digest.Digest(d)
	e.ArtifactDigest = digest.Digest(artifactDigest)
	e.Kind = catalog.EvidenceKind(kind)
	if predicate.Valid {
		e.Predicate = json.RawMessage(predicate.String)
	}
	e.CreatedAt = fromNanos(created)
	return e, nil
}

// checkEvidence validates what makes an evidence row usable by a later
// re-evaluation, and fills a zero CreatedAt with now. Whether the evidence
// verifies is the caller's business (package signing), done before this.
func (db *DB) checkEvidence(e catalog.Evidence) (catalog.Evidence, error) {
	ref := e.ArtifactName + ":" + e.ArtifactVersion
	bad := func(format string, args ...any) (catalog.Evidence, error) {
		return e, fmt.Errorf("%w: evidence %s for %s: %s", errdef.ErrInvalidInput, e.Digest, ref, fmt.Sprintf(format, args...))
	}
	switch {
	case e.ArtifactName == "" || e.ArtifactVersion == "":
		return bad("needs an artifact name and version")
	case e.Digest.Validate() != nil:
		return bad("digest: %v", e.Digest.Validate())
	case e.ArtifactDigest.Validate() != nil:
		return bad("artifact digest %q: %v", e.ArtifactDigest, e.ArtifactDigest.Validate())
	case e.Kind != catalog.EvidenceSignature && e.Kind != catalog.EvidenceAttestation:
		return bad("unknown kind %q", e.Kind)
	case e.Format == "":
		return bad("needs a format")
	case e.KeyID == "":
		return bad("needs the id of the key that verified it")
	case e.Size < 0:
		return bad("negative size %d", e.Size)
	case e.Kind == catalog.EvidenceAttestation && e.PredicateType == "":
		return bad("an attestation needs a predicate type")
	case e.Kind == catalog.EvidenceSignature && (e.PredicateType != "" || len(e.Predicate) > 0):
		return bad("a signature has no predicate")
	case e.Keyless != nil && (e.Keyless.Root == "" || e.Keyless.Issuer == "" || e.Keyless.Subject == ""):
		return bad("keyless evidence needs its root, issuer and subject")
	}
	for _, c := range e.Claims {
		if c.Validate() != nil {
			return bad("claim %q: %v", c, c.Validate())
		}
	}
	if len(e.Predicate) > 0 {
		if err := checkJSON(e.Predicate); err != nil {
			return e, fmt.Errorf("evidence %s for %s: predicate: %w", e.Digest, ref, err)
		}
	}
	t, ok := db.timeOrNow(e.CreatedAt)
	if !ok {
		return bad("creation time %s out of range", e.CreatedAt)
	}
	e.CreatedAt = t
	return e, nil
}

// AddEvidence stores e and records "evidence.added". Evidence already
// stored for the version under e.Digest is a no-op (created=false, the
// stored row unchanged): the digest names the bytes, so it is the same
// evidence. errdef.ErrNotFound if the artifact version is unknown. check,
// when set, decides first, inside the transaction, on the artifact as
// stored (its row locked where the dialect has several writers) with the
// claims' first presentations read through the transaction (under the
// claims' locks where the dialect has several writers, so that two
// artifacts cannot both be the first to present one claim): whether the
// evidence binds to this artifact is the domain's rule
// (catalog.AddEvidence), not the store's.
//
// decide, when set, runs after the evidence is recorded, in the same
// transaction, with the evidence and the trust revision read through it;
// the decision it returns is stored as SetAdmission stores one.
func (x *Catalog) AddEvidence(ctx context.Context, actor access.Actor, e catalog.Evidence, check func(tx catalog.ClaimReader, a catalog.Artifact) error,
	decide func(tx catalog.AdmissionReader, a catalog.Artifact) (*catalog.Admission, audit.Change, error)) (bool, catalog.Artifact, error) {
	db := x.db
	e, err := db.checkEvidence(e)
	if err != nil {
		return false, catalog.Artifact{}, err
	}
	ref := e.ArtifactName + ":" + e.ArtifactVersion
	var predicate sql.NullString
	if len(e.Predicate) > 0 {
		predicate = sql.NullString{String: string(e.Predicate), Valid: true}
	}
	var keyless sql.NullString
	if e.Keyless != nil {
		b, err := json.Marshal(e.Keyless)
		if err != nil {
			return false, catalog.Artifact{}, err
		}
		keyless = sql.NullString{String: string(b), Valid: true}
	}
	var (
		created bool
		stored  catalog.Artifact
		ruleErr error // check's or decide's
	)
	claims := make([]string, len(e.Claims))
	for i, c := range e.Claims {
		claims[i] = claimLock(c.String())
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		created, stored, ruleErr = false, catalog.Artifact{}, nil
		a, err := db.lockArtifact(ctx, tx, e.ArtifactName, e.ArtifactVersion)
		if err != nil {
			return err
		}
		if err := db.lock(ctx, tx, claims...); err != nil {
			return err
		}
		reads := catalogReads{trustReads{db: db, q: tx}}
		if check != nil {
			if ruleErr = check(reads, a); ruleErr != nil {
				return ruleErr
			}
		}
		if created, err = db.insertEvidence(ctx, tx, actor, e, predicate, keyless); err != nil {
			return err
		}
		stored = a
		if decide == nil {
			return nil
		}
		adm, change, err := decide(reads, a)
		if err != nil {
			ruleErr = err
			return err
		}
		if adm != nil {
			stored, err = db.storeAdmission(ctx, tx, actor, a.Name, a.Version, *adm, change)
		}
		return err
	})
	if ruleErr != nil {
		return false, catalog.Artifact{}, ruleErr
	}
	switch err := db.translate(err); {
	case errors.Is(err, errdef.ErrNotFound), errors.Is(err, errdef.ErrInvalidInput):
		return false, catalog.Artifact{}, err
	case err != nil:
		return false, catalog.Artifact{}, fmt.Errorf("sqlstore: add evidence %s to %s: %w", e.Digest, ref, err)
	}
	return created, stored, nil
}

// insertEvidence records e in tx with its event and its claims' first
// presentations, unless the version has it already (created=false, and
// nothing written).
func (db *DB) insertEvidence(ctx context.Context, tx *sql.Tx, actor access.Actor, e catalog.Evidence, predicate, keyless sql.NullString) (created bool, err error) {
	res, err := tx.ExecContext(ctx, db.q(`INSERT INTO evidence (`+evidenceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (artifact_name, artifact_version, digest) DO NOTHING`),
		e.ArtifactName, e.ArtifactVersion, e.Digest.String(), e.ArtifactDigest.String(), string(e.Kind), e.Format, e.MediaType, e.Size,
		e.KeyID, e.PredicateType, predicate, e.CreatedBy, toNanos(e.CreatedAt), keyless)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	// The first presentation of each claim is kept; later ones leave it
	// as it is.
	for _, c := range e.Claims {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO evidence_claims (claim, artifact_name, artifact_version, presented_by, presented_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (claim) DO NOTHING`),
			c.String(), e.ArtifactName, e.ArtifactVersion, e.CreatedBy, toNanos(e.CreatedAt))
		if err != nil {
			return false, err
		}
	}
	return true, db.recordEvent(ctx, tx, db.now(), actor, catalog.ActionEvidenceAdded, e.ArtifactName+":"+e.ArtifactVersion, struct {
		Digest        digest.Digest          `json:"digest"`
		Kind          catalog.EvidenceKind   `json:"kind"`
		Format        string                 `json:"format"`
		KeyID         string                 `json:"keyId"`
		PredicateType string                 `json:"predicateType"`
		Keyless       *signing.KeylessSigner `json:"keyless,omitempty"`
	}{e.Digest, e.Kind, e.Format, e.KeyID, e.PredicateType, e.Keyless})
}

// ListEvidence returns the evidence of one version, oldest first (ties in
// digest order, so the order is stable). An unknown version has none.
func (x *Catalog) ListEvidence(ctx context.Context, name, version string) ([]catalog.Evidence, error) {
	return catalogReads{trustReads{db: x.db, q: x.db.sql}}.ListEvidence(ctx, name, version)
}

// ClaimPresentation returns where claim was first presented.
func (x *Catalog) ClaimPresentation(ctx context.Context, claim digest.Digest) (catalog.ClaimPresentation, error) {
	return catalogReads{trustReads{db: x.db, q: x.db.sql}}.ClaimPresentation(ctx, claim)
}

// catalogReads reads through q, the database or the transaction of
// AddEvidence, what the domain's rules there weigh: claims' first
// presentations (catalog.ClaimReader), a version's evidence and the trust
// (catalog.AdmissionReader).
type catalogReads struct{ trustReads }

var _ catalog.AdmissionReader = catalogReads{}

func (r catalogReads) ListEvidence(ctx context.Context, name, version string) ([]catalog.Evidence, error) {
	db := r.db
	rows, err := r.q.QueryContext(ctx, db.q(`SELECT `+evidenceColumns+` FROM evidence
		WHERE artifact_name = ? AND artifact_version = ? ORDER BY created_at, digest`), name, version)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list evidence of %s:%s: %w", name, version, db.translate(err))
	}
	defer rows.Close()
	var out []catalog.Evidence
	for rows.Next() {
		e, err := scanEvidence(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list evidence of %s:%s: %w", name, version, db.translate(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list evidence of %s:%s: %w", name, version, db.translate(err))
	}
	return out, nil
}

func (r catalogReads) ClaimPresentation(ctx context.Context, claim digest.Digest) (catalog.ClaimPresentation, error) {
	db := r.db
	var (
		cp        = catalog.ClaimPresentation{Claim: claim}
		presented int64
	)
	err := r.q.QueryRowContext(ctx, db.q(`SELECT artifact_name, artifact_version, presented_by, presented_at
		FROM evidence_claims WHERE claim = ?`), claim.String()).Scan(&cp.ArtifactName, &cp.ArtifactVersion, &cp.PresentedBy, &presented)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return catalog.ClaimPresentation{}, fmt.Errorf("claim %s: %w", claim, errdef.ErrNotFound)
	case err != nil:
		return catalog.ClaimPresentation{}, fmt.Errorf("sqlstore: claim %s: %w", claim, db.translate(err))
	}
	cp.PresentedAt = fromNanos(presented)
	return cp, nil
}
