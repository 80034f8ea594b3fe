package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

// Blobs is the persistence of blob integrity and of gc's coordination
// with writers (blobs.Store): db.Blobs().
type Blobs struct{ db *DB }

var _ blobs.Store = (*Blobs)(nil)

// Blobs returns the blob integrity store.
func (db *DB) Blobs() blobs.Store { return &Blobs{db} }

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %v", errdef.ErrInvalidInput, d, err)
	}
	return nil
}

// BlobIntegrity returns what is known of d; a zero record when nothing is.
func (x *Blobs) BlobIntegrity(ctx context.Context, d digest.Digest) (blobs.BlobIntegrity, error) {
	db := x.db
	if err := checkDigest(d); err != nil {
		return blobs.BlobIntegrity{}, err
	}
	rec, _, err := db.blobIntegrity(ctx, db.sql, d)
	if err != nil {
		return blobs.BlobIntegrity{}, fmt.Errorf("sqlstore: integrity of %s: %w", d, err)
	}
	return rec, nil
}

// blobIntegrity reads the record of d and whether there is one.
func (db *DB) blobIntegrity(ctx context.Context, q querier, d digest.Digest) (blobs.BlobIntegrity, bool, error) {
	rec := blobs.BlobIntegrity{Digest: d}
	var verifiedAt, corruptAt sql.NullInt64
	err := q.QueryRowContext(ctx, db.q(`SELECT verified_state, verified_at, corrupt_at, corrupt_reason
		FROM blob_integrity WHERE digest = ?`), d.String()).
		Scan(&rec.VerifiedState, &verifiedAt, &corruptAt, &rec.CorruptReason)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, db.translate(err)
	}
	if verifiedAt.Valid {
		rec.VerifiedAt = fromNanos(verifiedAt.Int64)
	}
	if corruptAt.Valid {
		t := fromNanos(corruptAt.Int64)
		rec.CorruptAt = &t
	}
	return rec, true, nil
}

// UpdateIntegrity loads d's integrity record in a write transaction (a
// zero record when there is none) and lets decide choose the record to
// store instead and the event to record; at (zero: now) is the time of
// both, under the blob's lock where the dialect has several writers. A nil
// record stores nothing, an empty Action records nothing;
// decide's error is returned as it is. What a verification or a corrupt
// read means for the record (a repair, a mark that stays) is the domain's
// to say (blobs.RecordVerified, blobs.MarkCorrupt).
func (x *Blobs) UpdateIntegrity(ctx context.Context, actor access.Actor, d digest.Digest, at time.Time, decide func(rec blobs.BlobIntegrity, at time.Time) (*blobs.BlobIntegrity, audit.Change, error)) error {
	db := x.db
	if err := checkDigest(d); err != nil {
		return err
	}
	at, ok := db.timeOrNow(at)
	if !ok {
		return fmt.Errorf("%w: time %s out of range", errdef.ErrInvalidInput, at)
	}
	var decideErr error
	err := db.write(ctx, func(tx *sql.Tx) error {
		decideErr = nil
		if err := db.lock(ctx, tx, blobLock(d.String())); err != nil {
			return err
		}
		rec, _, err := db.blobIntegrity(ctx, tx, d)
		if err != nil {
			return err
		}
		next, change, err := decide(rec, at)
		if err != nil {
			decideErr = err
			return err
		}
		if next != nil {
			if next.Digest != d {
				return fmt.Errorf("%w: the integrity record of %s cannot name %s", errdef.ErrInvalidInput, d, next.Digest)
			}
			var verifiedAt, corruptAt sql.NullInt64
			if !next.VerifiedAt.IsZero() {
				verifiedAt = sql.NullInt64{Int64: toNanos(next.VerifiedAt), Valid: true}
			}
			if next.CorruptAt != nil {
				corruptAt = sql.NullInt64{Int64: toNanos(*next.CorruptAt), Valid: true}
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO blob_integrity (digest, verified_state, verified_at, corrupt_at, corrupt_reason)
				VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (digest) DO UPDATE SET verified_state = excluded.verified_state, verified_at = excluded.verified_at,
					corrupt_at = excluded.corrupt_at, corrupt_reason = excluded.corrupt_reason`),
				d.String(), next.VerifiedState, verifiedAt, corruptAt, next.CorruptReason); err != nil {
				return err
			}
		}
		if change.Action == "" {
			return nil
		}
		return db.recordEvent(ctx, tx, at, actor, change.Action, d.String(), change.Details)
	})
	if decideErr != nil {
		return decideErr
	}
	if err != nil {
		return fmt.Errorf("sqlstore: update integrity of %s: %w", d, db.translate(err))
	}
	return nil
}

// referenceArms are the catalogue's references to blobs, one SELECT per
// table that names digests: the digest, the size it records (-1 for none),
// and which entry holds it. Each arm's digest column is indexed. (The -1
// is cast so that a size compared with it is a BIGINT on every dialect.)
var referenceArms = []struct {
	table, digest, size, kind, name, where string
}{
	{"artifacts", "digest", "size", "artifact", "name || ':' || version", ""},
	{"evidence", "digest", "size", "evidence", "artifact_name || ':' || artifact_version", ""},
	{"release_artifacts", "digest", noSize, "release", "'release:' || release_name", ""},
	{"oci_manifests", "digest", "size", "oci-manifest", "repository || '@' || digest", ""},
	{"oci_manifest_refs", "ref", noSize, "oci-ref", "repository || '@' || manifest", "external = 0 AND "},
	{"oci_blob_links", "digest", "size", "oci-link", "repository", ""},
	// manifest_digest is computed from the document (migration 0007).
	{"releases", "manifest_digest", noSize, "release-manifest", "'release:' || name", ""},
}

const noSize = "CAST(-1 AS BIGINT)"

// referenced reports whether the catalogue refers to d.
func (db *DB) referenced(ctx context.Context, q querier, d digest.Digest) (bool, error) {
	query := "SELECT CASE WHEN"
	args := []any{}
	for i, a := range referenceArms {
		if i > 0 {
			query += " OR"
		}
		query += " EXISTS (SELECT 1 FROM " + a.table + " WHERE " + a.where + a.digest + " = ?)"
		args = append(args, d.String())
	}
	query += " THEN 1 ELSE 0 END"
	var n int
	if err := q.QueryRowContext(ctx, db.q(query), args...).Scan(&n); err != nil {
		return false, err
	}
	return n == 1, nil
}

// BlobReferenced reports whether the catalogue refers to d.
func (x *Blobs) BlobReferenced(ctx context.Context, d digest.Digest) (bool, error) {
	db := x.db
	if err := checkDigest(d); err != nil {
		return false, err
	}
	ok, err := db.referenced(ctx, db.sql, d)
	if err != nil {
		return false, fmt.Errorf("sqlstore: references to %s: %w", d, db.translate(err))
	}
	return ok, nil
}

// ReferencedBlobs pages through the distinct (digest, size) pairs the
// catalogue refers to. Each arm reads at most one page, in order, from
// its digest index, starting at the cursor; the union of those is sorted
// and cut to the page. A page costs its own size, not the catalogue's:
// a UNION filtered and limited only from outside would be sorted whole
// for every page.
func (x *Blobs) ReferencedBlobs(ctx context.Context, after blobs.BlobRef, limit int) ([]blobs.BlobRef, error) {
	db := x.db
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", errdef.ErrInvalidInput)
	}
	afterSize := after.Size
	if after.Digest == "" {
		afterSize = -2 // below any recorded size, -1 included
	}
	query := "SELECT digest, size FROM ("
	var args []any
	for i, a := range referenceArms {
		if i > 0 {
			query += " UNION"
		}
		query += " SELECT * FROM (SELECT " + a.digest + " AS digest, " + a.size + " AS size FROM " + a.table +
			" WHERE " + a.where + a.digest + " >= ? AND (" + a.digest + " > ? OR " + a.size + " > ?)" +
			" ORDER BY 1, 2 LIMIT ?) AS " + a.table
		args = append(args, after.Digest.String(), after.Digest.String(), afterSize, limit)
	}
	query += ") AS refs ORDER BY digest, size LIMIT ?"
	args = append(args, limit)
	rows, err := db.sql.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: referenced blobs: %w", db.translate(err))
	}
	defer rows.Close()
	out := []blobs.BlobRef{}
	for rows.Next() {
		var d string
		var r blobs.BlobRef
		if err := rows.Scan(&d, &r.Size); err != nil {
			return nil, fmt.Errorf("sqlstore: referenced blobs: %w", err)
		}
		r.Digest = digest.Digest(d)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: referenced blobs: %w", db.translate(err))
	}
	return out, nil
}

// BlobHolders lists the catalogue entries that refer to d.
func (x *Blobs) BlobHolders(ctx context.Context, d digest.Digest, limit int) ([]blobs.BlobHolder, error) {
	db := x.db
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", errdef.ErrInvalidInput)
	}
	query := "SELECT kind, name FROM ("
	var args []any
	for i, a := range referenceArms {
		if i > 0 {
			query += " UNION"
		}
		query += " SELECT '" + a.kind + "' AS kind, " + a.name + " AS name FROM " + a.table + " WHERE " + a.where + a.digest + " = ?"
		args = append(args, d.String())
	}
	query += ") AS holders ORDER BY kind, name LIMIT ?"
	args = append(args, limit)
	rows, err := db.sql.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: holders of %s: %w", d, db.translate(err))
	}
	defer rows.Close()
	out := []blobs.BlobHolder{}
	for rows.Next() {
		var h blobs.BlobHolder
		if err := rows.Scan(&h.Kind, &h.Name); err != nil {
			return nil, fmt.Errorf("sqlstore: holders of %s: %w", d, err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: holders of %s: %w", d, db.translate(err))
	}
	return out, nil
}

// ClaimBlob records a writer's claim on d, unless allow, given when a
// deletion of d under way began (nil: none is), refuses it. On PostgreSQL
// the claim and gc's BeginBlobDeletion take the blob's lock: each sees the
// other's commit, or the other sees its own.
func (x *Blobs) ClaimBlob(ctx context.Context, id string, d digest.Digest, at time.Time, allow func(deletionStarted *time.Time) error) error {
	db := x.db
	if err := checkDigest(d); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("%w: empty claim id", errdef.ErrInvalidInput)
	}
	at, ok := db.timeOrNow(at)
	if !ok {
		return fmt.Errorf("%w: time %s out of range", errdef.ErrInvalidInput, at)
	}
	var allowErr error
	err := db.write(ctx, func(tx *sql.Tx) error {
		allowErr = nil
		if err := db.lock(ctx, tx, blobLock(d.String())); err != nil {
			return err
		}
		var (
			started  int64
			deletion *time.Time
		)
		err := tx.QueryRowContext(ctx, db.q(`SELECT started_at FROM blob_deletions WHERE digest = ?`), d.String()).Scan(&started)
		switch {
		case err == nil:
			t := fromNanos(started)
			deletion = &t
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if allowErr = allow(deletion); allowErr != nil {
			return allowErr
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO blob_claims (id, digest, claimed_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, claimed_at = excluded.claimed_at`),
			id, d.String(), toNanos(at))
		return err
	})
	if allowErr != nil {
		return allowErr
	}
	if err != nil {
		return fmt.Errorf("sqlstore: claim %s: %w", d, db.translate(err))
	}
	return nil
}

// DropBlobClaim removes a claim.
func (x *Blobs) DropBlobClaim(ctx context.Context, id string) error {
	db := x.db
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`DELETE FROM blob_claims WHERE id = ?`), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: drop claim %s: %w", id, db.translate(err))
	}
	return nil
}

// BeginBlobDeletion records that d is about to be deleted if decide,
// given whether the catalogue refers to d and when each claim on it was
// made, says so; the claims go with it. The reads and the record share one
// transaction: a writer's claim or reference commits either before it
// (and decide sees it) or after it (and the writer sees the deletion).
func (x *Blobs) BeginBlobDeletion(ctx context.Context, d digest.Digest, at time.Time, decide func(referenced bool, claims []time.Time) bool) (bool, error) {
	db := x.db
	if err := checkDigest(d); err != nil {
		return false, err
	}
	at, ok := db.timeOrNow(at)
	if !ok {
		return false, fmt.Errorf("%w: time %s out of range", errdef.ErrInvalidInput, at)
	}
	var begun bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		begun = false
		if err := db.lock(ctx, tx, blobLock(d.String())); err != nil {
			return err
		}
		ref, err := db.referenced(ctx, tx, d)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT claimed_at FROM blob_claims WHERE digest = ?`), d.String())
		if err != nil {
			return err
		}
		var claims []time.Time
		for rows.Next() {
			var n int64
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			claims = append(claims, fromNanos(n))
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		if !decide(ref, claims) {
			return nil
		}
		// The claims decide let go were left by writers that died.
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM blob_claims WHERE digest = ?`), d.String()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO blob_deletions (digest, started_at) VALUES (?, ?)
			ON CONFLICT (digest) DO UPDATE SET started_at = excluded.started_at`), d.String(), toNanos(at)); err != nil {
			return err
		}
		begun = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: begin deleting %s: %w", d, db.translate(err))
	}
	return begun, nil
}

// EndBlobDeletion ends a deletion; when the blob was deleted its integrity
// record goes and blob.collected is recorded.
func (x *Blobs) EndBlobDeletion(ctx context.Context, actor access.Actor, d digest.Digest, deleted bool, size int64) error {
	db := x.db
	if err := checkDigest(d); err != nil {
		return err
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := db.lock(ctx, tx, blobLock(d.String())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM blob_deletions WHERE digest = ?`), d.String()); err != nil {
			return err
		}
		if !deleted {
			return nil
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM blob_integrity WHERE digest = ?`), d.String()); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, blobs.ActionBlobCollected, d.String(), struct {
			Size int64 `json:"size"`
		}{size})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: end deleting %s: %w", d, db.translate(err))
	}
	return nil
}
