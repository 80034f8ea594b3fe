package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/quota"
)

// Quotas is the persistence of quotas (quota.Store): db.Quotas().
type Quotas struct{ db *DB }

var _ quota.Store = (*Quotas)(nil)

// Quotas returns the quotas' store.
func (db *DB) Quotas() quota.Store { return &Quotas{db} }

// quotaLock guards a prefix's usage: a push that checked the quota and
// the push that records a version under the prefix decide one at a time
// (lock order: after the name's lock and the rows, before the audit's).
func quotaLock(prefix string) string { return "quota\x00" + prefix }

func quotaSubject(prefix string) string { return "quota:" + prefix }

// ListQuotas returns every quota, ordered by prefix.
func (x *Quotas) ListQuotas(ctx context.Context) ([]quota.Quota, error) {
	return x.db.listQuotas(ctx, x.db.sql)
}

func (db *DB) listQuotas(ctx context.Context, q querier) ([]quota.Quota, error) {
	rows, err := q.QueryContext(ctx, `SELECT prefix, max_bytes, max_artifacts, updated_by, updated_at FROM quotas ORDER BY prefix`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: quotas: %w", db.translate(err))
	}
	defer rows.Close()
	out := []quota.Quota{}
	for rows.Next() {
		var qt quota.Quota
		var at int64
		if err := rows.Scan(&qt.Prefix, &qt.MaxBytes, &qt.MaxArtifacts, &qt.UpdatedBy, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: quotas: %w", db.translate(err))
		}
		qt.UpdatedAt = fromNanos(at)
		out = append(out, qt)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: quotas: %w", db.translate(err))
	}
	return out, nil
}

// Usage is what the catalogue holds under prefix: the versions whose name
// starts with it and their sizes, plus the blobs linked into OCI
// repositories under it (each repository and digest once). Both are
// range scans of a primary key: names are printable ASCII, below 0x7f,
// and every dialect compares them bytewise.
func (x *Quotas) Usage(ctx context.Context, prefix string) (quota.Usage, error) {
	return x.db.usage(ctx, x.db.sql, prefix)
}

func (db *DB) usage(ctx context.Context, q querier, prefix string) (quota.Usage, error) {
	var u quota.Usage
	end := prefix + "\x7f"
	err := q.QueryRowContext(ctx, db.q(`SELECT COUNT(*), COALESCE(SUM(size), 0) FROM artifacts WHERE name >= ? AND name < ?`), prefix, end).Scan(&u.Artifacts, &u.Bytes)
	if err != nil {
		return quota.Usage{}, fmt.Errorf("sqlstore: usage of %q: %w", prefix, db.translate(err))
	}
	var linked int64
	err = q.QueryRowContext(ctx, db.q(`SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT repository, digest, size FROM oci_blob_links
		WHERE repository >= ? AND repository < ?) l`), prefix, end).Scan(&linked)
	if err != nil {
		return quota.Usage{}, fmt.Errorf("sqlstore: usage of %q: %w", prefix, db.translate(err))
	}
	u.Bytes += linked
	return u, nil
}

// txQuotas reads quotas and usage inside a write transaction; Usage takes
// the prefix's lock first, so that what it counted stays true to the
// commit.
type txQuotas struct {
	db *DB
	tx *sql.Tx
}

func (r txQuotas) ListQuotas(ctx context.Context) ([]quota.Quota, error) {
	return r.db.listQuotas(ctx, r.tx)
}

func (r txQuotas) Usage(ctx context.Context, prefix string) (quota.Usage, error) {
	if err := r.db.lock(ctx, r.tx, quotaLock(prefix)); err != nil {
		return quota.Usage{}, err
	}
	return r.db.usage(ctx, r.tx, prefix)
}

// PutQuota creates or replaces q and records quota.set.
func (x *Quotas) PutQuota(ctx context.Context, actor access.Actor, q quota.Quota) (quota.Quota, error) {
	db := x.db
	at, ok := db.timeOrNow(q.UpdatedAt)
	if !ok {
		return quota.Quota{}, fmt.Errorf("%w: quota %q: time out of range", errdef.ErrInvalidInput, q.Prefix)
	}
	q.UpdatedAt = at
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO quotas (prefix, max_bytes, max_artifacts, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (prefix) DO UPDATE SET max_bytes = excluded.max_bytes, max_artifacts = excluded.max_artifacts,
				updated_by = excluded.updated_by, updated_at = excluded.updated_at`),
			q.Prefix, q.MaxBytes, q.MaxArtifacts, q.UpdatedBy, toNanos(q.UpdatedAt))
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, q.UpdatedAt, actor, quota.ActionQuotaSet, quotaSubject(q.Prefix), struct {
			Prefix       string `json:"prefix"`
			MaxBytes     int64  `json:"maxBytes"`
			MaxArtifacts int64  `json:"maxArtifacts"`
		}{q.Prefix, q.MaxBytes, q.MaxArtifacts})
	})
	if err != nil {
		return quota.Quota{}, fmt.Errorf("sqlstore: set quota %q: %w", q.Prefix, db.translate(err))
	}
	return q, nil
}

// DeleteQuota deletes the quota of prefix and records quota.deleted.
func (x *Quotas) DeleteQuota(ctx context.Context, actor access.Actor, prefix string) error {
	db := x.db
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM quotas WHERE prefix = ?`), prefix)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return sql.ErrNoRows
		}
		return db.recordEvent(ctx, tx, db.now(), actor, quota.ActionQuotaDeleted, quotaSubject(prefix), struct {
			Prefix string `json:"prefix"`
		}{prefix})
	})
	if err = db.translate(err); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("quota %q: %w", prefix, err)
		}
		return fmt.Errorf("sqlstore: delete quota %q: %w", prefix, err)
	}
	return nil
}
