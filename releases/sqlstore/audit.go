package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/errdef"
	"golang.org/x/mod/sumdb/tlog"
)

// Audit is the read side of the audit log (audit.Store): db.Audit().
type Audit struct{ db *DB }

var _ audit.Store = (*Audit)(nil)

// Audit returns the audit log's store.
func (db *DB) Audit() audit.Store { return &Audit{db} }

// querier is what reads need of *sql.DB and *sql.Tx alike, so that one
// query serves both a caller and a write transaction that must see its own
// uncommitted rows.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Batch sizes of the audit log's reads: records per query while streaming
// entries, events per query while backfilling, and ids per IN list (well
// under any database's limit on bound parameters).
const (
	auditPageSize     = 256
	backfillBatchSize = 500
	maxInList         = 500
)

// appendAudit appends the audit record of e, an event just inserted in tx,
// and the Merkle hashes it completes. The record's index is the log's size
// read inside tx, so indexes are dense whatever the gaps in event seq. No
// other writer, in this process or another, can take the same index: on
// SQLite the write transaction holds the database's write lock (BEGIN
// IMMEDIATE) from its start; on PostgreSQL the caller holds the audit
// log's lock (auditLock, taken by recordEvent and backfillAuditLog) to its
// commit, and reads the size after taking it. The primary key refuses a
// repeat either way.
//
// The hashes are computed incrementally: tlog.StoredHashes reads at most
// log₂ n earlier hashes, so appending stays O(log n) however long the log.
func (db *DB) appendAudit(ctx context.Context, tx *sql.Tx, e audit.Event) error {
	n, err := db.auditSize(ctx, tx)
	if err != nil {
		return fmt.Errorf("audit log size: %w", err)
	}
	record, err := e.Record(n)
	if err != nil {
		return fmt.Errorf("audit record of event %d: %w", e.Seq, err)
	}
	hashes, err := tlog.StoredHashes(n, record, db.hashReader(ctx, tx))
	if err != nil {
		return fmt.Errorf("audit record %d: hashes: %w", n, err)
	}
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO audit_records (idx, event_seq, subject, record) VALUES (?, ?, ?, ?)`),
		n, e.Seq, e.Subject, string(record))
	if err != nil {
		return fmt.Errorf("audit record %d: %w", n, err)
	}
	// StoredHashes returns the hashes to store at StoredHashIndex(0, n)
	// and the ids after it, in that order.
	first := tlog.StoredHashIndex(0, n)
	args := make([]any, 0, 2*len(hashes))
	for i, h := range hashes {
		args = append(args, first+int64(i), h[:])
	}
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO audit_hashes (id, hash) VALUES `+placeholders("(?, ?)", len(hashes))), args...)
	if err != nil {
		return fmt.Errorf("audit record %d: hashes: %w", n, err)
	}
	return nil
}

// backfillAuditLog appends every event that is not in the audit log yet,
// oldest first, in batches so that memory stays bounded. Migration 0004
// runs it in its own transaction for the events recorded before the log
// existed; from then on recordEvent appends each event as it is written.
func (db *DB) backfillAuditLog(ctx context.Context, tx *sql.Tx) error {
	if err := db.lock(ctx, tx, auditLock); err != nil {
		return err
	}
	var after int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(event_seq), 0) FROM audit_records`).Scan(&after); err != nil {
		return err
	}
	for {
		evs, err := db.events(ctx, tx, after, backfillBatchSize, false)
		if err != nil {
			return fmt.Errorf("backfill audit log after event %d: %w", after, err)
		}
		if len(evs) == 0 {
			return nil
		}
		for _, e := range evs {
			if err := db.appendAudit(ctx, tx, e); err != nil {
				return fmt.Errorf("backfill audit log: %w", err)
			}
		}
		after = evs[len(evs)-1].Seq
	}
}

// auditSize is the number of records. Indexes are dense from 0, so it is
// MAX + 1, which the primary key answers without the full scan COUNT(*)
// costs on SQLite.
func (db *DB) auditSize(ctx context.Context, q querier) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records`).Scan(&n)
	return n, err
}

// AuditSize is the number of records in the audit log.
func (a *Audit) AuditSize(ctx context.Context) (int64, error) {
	db := a.db
	n, err := db.auditSize(ctx, db.sql)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: audit log size: %w", db.translate(err))
	}
	return n, nil
}

// AuditEntries calls fn for records start, start+1, … up to limit records
// (all of them if limit <= 0), stopping at the end of the log as it was
// when the call began; records appended meanwhile are left for the next
// call. An error from fn stops the walk and is returned as is.
//
// Records are read a page at a time, and no query is open while fn runs:
// fn may be as slow as the client it writes to without holding a read
// transaction open (which would stop SQLite checkpointing the WAL), and
// it may call the store itself even when the pool has a single connection.
func (a *Audit) AuditEntries(ctx context.Context, start, limit int64, fn func(audit.AuditEntry) error) error {
	db := a.db
	if start < 0 {
		return fmt.Errorf("audit entries: %w: start %d is negative", errdef.ErrInvalidInput, start)
	}
	end, err := db.auditSize(ctx, db.sql)
	if err != nil {
		return fmt.Errorf("sqlstore: audit entries from %d: %w", start, db.translate(err))
	}
	if limit > 0 && limit < end-start {
		end = start + limit
	}
	for next := start; next < end; {
		page, err := db.auditPage(ctx, next, min(end-next, auditPageSize))
		if err != nil {
			return fmt.Errorf("sqlstore: audit entries from %d: %w", next, db.translate(err))
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		next = page[len(page)-1].Index + 1
	}
	return nil
}

// auditPage reads up to n records from index start on.
func (db *DB) auditPage(ctx context.Context, start, n int64) ([]audit.AuditEntry, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT idx, record FROM audit_records WHERE idx >= ? ORDER BY idx LIMIT ?`), start, n)
	if err != nil {
		return nil, err
	}
	// Rows are served as stored, holes included: a hole can only come from
	// tampering, and hiding it behind an error would keep the auditor's
	// tools from naming the record.
	return scanAuditEntries(rows)
}

// AuditEntriesFor returns the records whose subject is one of subjects,
// oldest first, and an empty list, not nil, when there are none.
func (a *Audit) AuditEntriesFor(ctx context.Context, subjects []string) ([]audit.AuditEntry, error) {
	db := a.db
	subjects = slices.Compact(slices.Sorted(slices.Values(subjects)))
	out := []audit.AuditEntry{}
	// Each record has one subject, so the chunks' results are disjoint;
	// sorting merges them.
	for chunk := range slices.Chunk(subjects, maxInList) {
		args := make([]any, len(chunk))
		for i, s := range chunk {
			args[i] = s
		}
		rows, err := db.sql.QueryContext(ctx, db.q(`SELECT idx, record FROM audit_records
			WHERE subject IN (`+placeholders("?", len(chunk))+`) ORDER BY idx`), args...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: audit entries for %q: %w", chunk, db.translate(err))
		}
		entries, err := scanAuditEntries(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: audit entries for %q: %w", chunk, db.translate(err))
		}
		out = append(out, entries...)
	}
	slices.SortFunc(out, func(a, b audit.AuditEntry) int { return cmp.Compare(a.Index, b.Index) })
	return out, nil
}

func scanAuditEntries(rows *sql.Rows) ([]audit.AuditEntry, error) {
	defer rows.Close()
	var out []audit.AuditEntry
	for rows.Next() {
		var e audit.AuditEntry
		if err := rows.Scan(&e.Index, &e.Record); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditHashes reads the stored Merkle hashes, for tlog.TreeHash,
// tlog.ProveRecord and tlog.ProveTree. ReadHashes answers in the order
// asked and fails, wrapping errdef.ErrNotFound, if any hash is not
// stored.
func (a *Audit) AuditHashes(ctx context.Context) tlog.HashReader {
	db := a.db
	r := db.hashReader(ctx, db.sql)
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hashes, err := r.ReadHashes(indexes)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: audit hashes: %w", db.translate(err))
		}
		return hashes, nil
	})
}

// hashReader reads stored hashes through q.
func (db *DB) hashReader(ctx context.Context, q querier) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		found := make(map[int64]tlog.Hash, len(indexes))
		ids := slices.Compact(slices.Sorted(slices.Values(indexes)))
		for chunk := range slices.Chunk(ids, maxInList) {
			if err := db.readHashChunk(ctx, q, chunk, found); err != nil {
				return nil, err
			}
		}
		out := make([]tlog.Hash, len(indexes))
		for i, id := range indexes {
			h, ok := found[id]
			if !ok {
				return nil, fmt.Errorf("audit hash %d: %w", id, errdef.ErrNotFound)
			}
			out[i] = h
		}
		return out, nil
	})
}

func (db *DB) readHashChunk(ctx context.Context, q querier, ids []int64, found map[int64]tlog.Hash) error {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, db.q(`SELECT id, hash FROM audit_hashes WHERE id IN (`+placeholders("?", len(ids))+`)`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id  int64
			raw []byte
		)
		if err := rows.Scan(&id, &raw); err != nil {
			return err
		}
		if len(raw) != tlog.HashSize {
			return fmt.Errorf("audit hash %d: %d bytes; want %d", id, len(raw), tlog.HashSize)
		}
		found[id] = tlog.Hash(raw)
	}
	return rows.Err()
}

// placeholders repeats group n times, comma separated: "(?, ?), (?, ?)".
func placeholders(group string, n int) string {
	return strings.TrimSuffix(strings.Repeat(group+", ", n), ", ")
}
