package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/retention"
	"github.com/opencontainers/go-digest"
)

// Retention is the persistence of retention (retention.Store):
// db.Retention().
type Retention struct{ db *DB }

var _ retention.Store = (*Retention)(nil)

// Retention returns retention's store.
func (db *DB) Retention() retention.Store { return &Retention{db} }

func retentionPolicySubject(id string) string { return "retention-policy:" + id }

// ListPolicies returns every policy, ordered by ID.
func (x *Retention) ListPolicies(ctx context.Context) ([]retention.Policy, error) {
	db := x.db
	rows, err := db.sql.QueryContext(ctx, `SELECT id, pattern, keep_admitted, delete_quarantined_after_days, delete_rejected_after_days, updated_by, updated_at
		FROM retention_policies ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: retention policies: %w", db.translate(err))
	}
	defer rows.Close()
	out := []retention.Policy{}
	for rows.Next() {
		var p retention.Policy
		var at int64
		if err := rows.Scan(&p.ID, &p.Pattern, &p.KeepAdmitted, &p.DeleteQuarantinedAfterDays, &p.DeleteRejectedAfterDays, &p.UpdatedBy, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: retention policies: %w", db.translate(err))
		}
		p.UpdatedAt = fromNanos(at)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: retention policies: %w", db.translate(err))
	}
	return out, nil
}

// PutPolicy creates or replaces p and records retention.policy.set.
func (x *Retention) PutPolicy(ctx context.Context, actor access.Actor, p retention.Policy) (retention.Policy, error) {
	db := x.db
	at, ok := db.timeOrNow(p.UpdatedAt)
	if !ok {
		return retention.Policy{}, fmt.Errorf("%w: retention policy %s: time %s out of range", errdef.ErrInvalidInput, p.ID, p.UpdatedAt)
	}
	p.UpdatedAt = at
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO retention_policies (id, pattern, keep_admitted, delete_quarantined_after_days, delete_rejected_after_days, updated_by, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET pattern = excluded.pattern, keep_admitted = excluded.keep_admitted,
				delete_quarantined_after_days = excluded.delete_quarantined_after_days,
				delete_rejected_after_days = excluded.delete_rejected_after_days,
				updated_by = excluded.updated_by, updated_at = excluded.updated_at`),
			p.ID, p.Pattern, p.KeepAdmitted, p.DeleteQuarantinedAfterDays, p.DeleteRejectedAfterDays, p.UpdatedBy, toNanos(p.UpdatedAt))
		if err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, p.UpdatedAt, actor, retention.ActionPolicySet, retentionPolicySubject(p.ID), struct {
			ID                         string `json:"id"`
			Pattern                    string `json:"pattern"`
			KeepAdmitted               int    `json:"keepAdmitted"`
			DeleteQuarantinedAfterDays int    `json:"deleteQuarantinedAfterDays"`
			DeleteRejectedAfterDays    int    `json:"deleteRejectedAfterDays"`
		}{p.ID, p.Pattern, p.KeepAdmitted, p.DeleteQuarantinedAfterDays, p.DeleteRejectedAfterDays})
	})
	if err != nil {
		return retention.Policy{}, fmt.Errorf("sqlstore: set retention policy %s: %w", p.ID, db.translate(err))
	}
	return p, nil
}

// DeletePolicy deletes policy id and records retention.policy.deleted.
func (x *Retention) DeletePolicy(ctx context.Context, actor access.Actor, id string) error {
	db := x.db
	err := db.write(ctx, func(tx *sql.Tx) error {
		var pattern string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT pattern FROM retention_policies WHERE id = ?`+db.dialect.lockRow), id).Scan(&pattern); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM retention_policies WHERE id = ?`), id); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, retention.ActionPolicyDeleted, retentionPolicySubject(id), struct {
			ID      string `json:"id"`
			Pattern string `json:"pattern"`
		}{id, pattern})
	})
	if err = db.translate(err); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("retention policy %q: %w", id, err)
		}
		return fmt.Errorf("sqlstore: delete retention policy %s: %w", id, err)
	}
	return nil
}

// versionColumns read a retention.Version (scanVersion): the artifact,
// whether a release names it, whether an OCI tag is it.
const versionColumns = `a.name, a.version, a.digest, a.size, a.state, a.created_at, a.retired_at,
	EXISTS (SELECT 1 FROM release_artifacts r WHERE r.artifact_name = a.name AND r.artifact_version = a.version),
	EXISTS (SELECT 1 FROM oci_tags t WHERE t.repository = a.name AND t.tag = a.version)`

func scanVersion(r rowScanner) (retention.Version, error) {
	var (
		v              retention.Version
		d, state       string
		created        int64
		retired        sql.NullInt64
		inRelease, tag bool
	)
	if err := r.Scan(&v.Name, &v.Version, &d, &v.Size, &state, &created, &retired, &inRelease, &tag); err != nil {
		return retention.Version{}, err
	}
	v.Digest, v.State, v.CreatedAt = digest.Digest(d), catalog.ArtifactState(state), fromNanos(created)
	v.Retired, v.InRelease, v.OCITag = retired.Valid, inRelease, tag
	return v, nil
}

// Versions lists one page of versions in (name, version) order.
func (x *Retention) Versions(ctx context.Context, afterName, afterVersion string, limit int) ([]retention.Version, error) {
	db := x.db
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+versionColumns+` FROM artifacts a
		WHERE a.name > ? OR (a.name = ? AND a.version > ?) ORDER BY a.name, a.version LIMIT ?`),
		afterName, afterName, afterVersion, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: retention versions: %w", db.translate(err))
	}
	defer rows.Close()
	var out []retention.Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: retention versions: %w", db.translate(err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: retention versions: %w", db.translate(err))
	}
	return out, nil
}

// DeleteVersion deletes name:version and its evidence if decide lets it.
// The artifact's row is locked first (lockArtifact's lockRow, after the
// name's lock), as a release including it locks it (txReads.GetArtifact):
// of the two, the later one sees the earlier one's commit — a release
// that took the version keeps it, and a release that comes after the
// deletion finds no version to take.
func (x *Retention) DeleteVersion(ctx context.Context, actor access.Actor, name, version string, decide func(v retention.Version) (audit.Change, error)) ([]digest.Digest, error) {
	db := x.db
	ref := name + ":" + version
	var (
		evidence []digest.Digest
		ruleErr  error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		evidence, ruleErr = nil, nil
		if err := db.lock(ctx, tx, nameLock(name)); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM artifacts WHERE name = ? AND version = ?`+db.dialect.lockRow), name, version).Scan(&one); err != nil {
			return err
		}
		v, err := scanVersion(tx.QueryRowContext(ctx, db.q(`SELECT `+versionColumns+` FROM artifacts a WHERE a.name = ? AND a.version = ?`), name, version))
		if err != nil {
			return err
		}
		change, err := decide(v)
		if err != nil {
			ruleErr = err
			return err
		}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT digest FROM evidence WHERE artifact_name = ? AND artifact_version = ? ORDER BY digest`), name, version)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return err
			}
			evidence = append(evidence, digest.Digest(d))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM evidence WHERE artifact_name = ? AND artifact_version = ?`), name, version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM artifacts WHERE name = ? AND version = ?`), name, version); err != nil {
			return err
		}
		if len(change.Details) > 0 {
			if err := checkJSON(change.Details); err != nil {
				return err
			}
		}
		return db.recordEvent(ctx, tx, db.now(), actor, change.Action, ref, change.Details)
	})
	if ruleErr != nil {
		return nil, ruleErr
	}
	if err = db.translate(err); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, fmt.Errorf("artifact %s: %w", ref, err)
		}
		return nil, fmt.Errorf("sqlstore: delete artifact %s: %w", ref, err)
	}
	return evidence, nil
}

// TryLease takes or renews lease name for holder (retention.Store).
// INSERT ... ON CONFLICT DO UPDATE ... WHERE is one statement on both
// dialects: of two replicas racing for a free lease, one inserts and the
// other's update finds its condition false.
func (x *Retention) TryLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	db := x.db
	var got bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`),
			name, holder, toNanos(until), toNanos(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		got = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: lease %s: %w", name, db.translate(err))
	}
	return got, nil
}

// DropLease gives up holder's lease name.
func (x *Retention) DropLease(ctx context.Context, name, holder string) error {
	db := x.db
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: drop lease %s: %w", name, db.translate(err))
	}
	return nil
}
