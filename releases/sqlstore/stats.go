package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/stats"
)

// Stats returns the store of monitoring counts.
func (db *DB) Stats() stats.Store { return statsStore{db} }

type statsStore struct{ db *DB }

// Inventory counts in one read-only transaction at the snapshot isolation
// the dialect offers, so the counts are one reading. Each query is an
// aggregate over one table or an index (artifacts by state, deliveries by
// state); the blob count reads the digest and size columns of the tables
// that name blobs.
func (s statsStore) Inventory(ctx context.Context) (stats.Inventory, error) {
	db := s.db
	inv := stats.Inventory{Artifacts: map[catalog.ArtifactState]int64{}}
	for _, st := range []catalog.ArtifactState{catalog.StateQuarantined, catalog.StateAdmitted, catalog.StateRejected} {
		inv.Artifacts[st] = 0
	}
	tx, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: db.dialect.snapshot})
	if err != nil {
		return stats.Inventory{}, fmt.Errorf("sqlstore: inventory: %w", db.translate(err))
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to commit
	fail := func(what string, err error) (stats.Inventory, error) {
		return stats.Inventory{}, fmt.Errorf("sqlstore: inventory: %s: %w", what, db.translate(err))
	}
	rows, err := tx.QueryContext(ctx, `SELECT state, COUNT(*) FROM artifacts GROUP BY state`)
	if err != nil {
		return fail("artifacts", err)
	}
	for rows.Next() {
		var (
			st string
			n  int64
		)
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return fail("artifacts", err)
		}
		inv.Artifacts[catalog.ArtifactState(st)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail("artifacts", err)
	}
	oldest := func(query string) (time.Time, error) {
		var at sql.NullInt64
		if err := tx.QueryRowContext(ctx, db.q(query)).Scan(&at); err != nil || !at.Valid {
			return time.Time{}, err
		}
		return fromNanos(at.Int64), nil
	}
	if inv.OldestQuarantined, err = oldest(`SELECT MIN(created_at) FROM artifacts WHERE state = 'quarantined'`); err != nil {
		return fail("oldest quarantined", err)
	}
	// UNION removes repeats: a blob named by several rows (two versions
	// of the same bytes, an artifact pushed over /v2/) counts once.
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (
		SELECT digest, size FROM artifacts
		UNION SELECT digest, size FROM evidence
		UNION SELECT digest, size FROM oci_manifests
		UNION SELECT digest, size FROM oci_blob_links) AS b`).Scan(&inv.Blobs, &inv.BlobBytes)
	if err != nil {
		return fail("blobs", err)
	}
	if inv.AuditRecords, err = db.auditSize(ctx, tx); err != nil {
		return fail("audit log", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'`).Scan(&inv.OutboxPending); err != nil {
		return fail("webhook outbox", err)
	}
	if inv.OldestPending, err = oldest(`SELECT MIN(created_at) FROM webhook_deliveries WHERE state = 'pending'`); err != nil {
		return fail("webhook outbox", err)
	}
	return inv, nil
}
