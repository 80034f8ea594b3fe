package releases

import (
	"context"

	"golang.org/x/mod/sumdb/tlog"
)

// AuditEntry is one record of the audit log: its index and its canonical
// bytes (see releases/auditlog), exactly as hashed into the Merkle tree.
type AuditEntry struct {
	Index  int64
	Record []byte
}

// AuditLog is the read side of the tamper-evident log. The write side is
// part of every mutating Metadata method: each recorded event is also
// appended to the log, with its Merkle hashes, in the same transaction.
type AuditLog interface {
	// AuditSize is the number of records in the log.
	AuditSize(ctx context.Context) (int64, error)
	// AuditEntries calls fn for records start, start+1, … (at most limit,
	// stopping at the end of the log), streaming from the database.
	AuditEntries(ctx context.Context, start, limit int64, fn func(AuditEntry) error) error
	// AuditEntriesFor returns the records whose subject is one of subjects,
	// oldest first (for provenance documents).
	AuditEntriesFor(ctx context.Context, subjects []string) ([]AuditEntry, error)
	// AuditHashes reads stored Merkle hashes (tlog stored-hash indexes).
	AuditHashes(ctx context.Context) tlog.HashReader
}
