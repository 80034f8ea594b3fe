package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/opencontainers/go-digest"
)

// The OCI registry's persistence, one adapter per store: db.Links(),
// db.Manifests(), db.Uploads().
type (
	BlobLinks struct{ db *DB }
	Manifests struct{ db *DB }
	Uploads   struct{ db *DB }
)

var (
	_ registry.BlobLinkStore = (*BlobLinks)(nil)
	_ registry.ManifestStore = (*Manifests)(nil)
	_ registry.UploadStore   = (*Uploads)(nil)
)

// Links returns the store of blobs pushed into repositories.
func (db *DB) Links() registry.BlobLinkStore { return &BlobLinks{db} }

// Manifests returns the store of manifests and tags.
func (db *DB) Manifests() registry.ManifestStore { return &Manifests{db} }

// Uploads returns the store of chunked upload sessions.
func (db *DB) Uploads() registry.UploadStore { return &Uploads{db} }

// ociSubject names a manifest or blob of a repository in events.
func ociSubject(repo string, d digest.Digest) string { return repo + "@" + d.String() }

func checkRepoDigest(repo string, d digest.Digest) error {
	if repo == "" {
		return fmt.Errorf("%w: empty repository", errdef.ErrInvalidInput)
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %v", errdef.ErrInvalidInput, d, err)
	}
	return nil
}

// LinkBlob records that l.CreatedBy pushed (or, with mountedFrom, mounted)
// l.Digest into l.Repository, with one event; a repeat records nothing.
func (x *BlobLinks) LinkBlob(ctx context.Context, actor access.Actor, l registry.BlobLink, mountedFrom string) (bool, error) {
	db := x.db
	if err := checkRepoDigest(l.Repository, l.Digest); err != nil {
		return false, err
	}
	if l.CreatedBy == "" || l.Size < 0 {
		return false, fmt.Errorf("%w: blob link needs its creator and a size", errdef.ErrInvalidInput)
	}
	at, ok := db.timeOrNow(l.CreatedAt)
	if !ok {
		return false, fmt.Errorf("%w: blob link time %s out of range", errdef.ErrInvalidInput, l.CreatedAt)
	}
	var created bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		created = false
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO oci_blob_links (repository, digest, created_by, size, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository, digest, created_by) DO NOTHING`),
			l.Repository, l.Digest.String(), l.CreatedBy, l.Size, toNanos(at))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		created = true
		action, details := registry.ActionOCIBlobPushed, any(struct {
			Size int64 `json:"size"`
		}{l.Size})
		if mountedFrom != "" {
			action, details = registry.ActionOCIBlobMounted, struct {
				Size int64  `json:"size"`
				From string `json:"from"`
			}{l.Size, mountedFrom}
		}
		return db.recordEvent(ctx, tx, at, actor, action, ociSubject(l.Repository, l.Digest), details)
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: link blob %s: %w", ociSubject(l.Repository, l.Digest), db.translate(err))
	}
	return created, nil
}

// BlobLinks returns the links of d in repo, oldest first.
func (x *BlobLinks) BlobLinks(ctx context.Context, repo string, d digest.Digest) ([]registry.BlobLink, error) {
	db := x.db
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT size, created_by, created_at FROM oci_blob_links
		WHERE repository = ? AND digest = ? ORDER BY created_at, created_by`), repo, d.String())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: blob links %s: %w", ociSubject(repo, d), db.translate(err))
	}
	defer rows.Close()
	links := []registry.BlobLink{}
	for rows.Next() {
		l := registry.BlobLink{Repository: repo, Digest: d}
		var at int64
		if err := rows.Scan(&l.Size, &l.CreatedBy, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: blob links %s: %w", ociSubject(repo, d), db.translate(err))
		}
		l.CreatedAt = fromNanos(at)
		links = append(links, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: blob links %s: %w", ociSubject(repo, d), db.translate(err))
	}
	return links, nil
}

// RepositoriesWithBlob lists up to limit repositories holding d.
func (x *BlobLinks) RepositoriesWithBlob(ctx context.Context, d digest.Digest, limit int) ([]string, error) {
	db := x.db
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT DISTINCT repository FROM oci_blob_links WHERE digest = ? ORDER BY repository LIMIT ?`), d.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: repositories with %s: %w", d, db.translate(err))
	}
	return scanStrings(rows)
}

// UnlinkBlob removes links of d from repo, those of createdBy or all of
// them when createdBy is "", if decide allows it, reading through the
// transaction (under the repository's lock where the dialect has several
// writers, so no manifest comes to refer to the blob meanwhile).
func (x *BlobLinks) UnlinkBlob(ctx context.Context, actor access.Actor, repo string, d digest.Digest, createdBy string, decide func(tx registry.TagTx) error) (int, error) {
	db := x.db
	if err := checkRepoDigest(repo, d); err != nil {
		return 0, err
	}
	var (
		removed   int64
		decideErr error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		removed = 0
		if err := db.lock(ctx, tx, nameLock(repo)); err != nil {
			return err
		}
		if decideErr = decide(tagReads{db: db, tx: tx}); decideErr != nil {
			return decideErr
		}
		q := `DELETE FROM oci_blob_links WHERE repository = ? AND digest = ?`
		args := []any{repo, d.String()}
		if createdBy != "" {
			q += ` AND created_by = ?`
			args = append(args, createdBy)
		}
		res, err := tx.ExecContext(ctx, db.q(q), args...)
		if err != nil {
			return err
		}
		if removed, err = res.RowsAffected(); err != nil {
			return err
		}
		if removed == 0 {
			return sql.ErrNoRows
		}
		return db.recordEvent(ctx, tx, db.now(), actor, registry.ActionOCIBlobDeleted, ociSubject(repo, d), struct {
			Links int64 `json:"links"`
		}{removed})
	})
	if decideErr != nil {
		return 0, decideErr
	}
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return 0, fmt.Errorf("blob %s: %w", ociSubject(repo, d), err)
	} else if err != nil {
		return 0, fmt.Errorf("sqlstore: unlink blob %s: %w", ociSubject(repo, d), err)
	}
	return int(removed), nil
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
