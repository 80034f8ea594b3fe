package audit

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/auditlog"
	"golang.org/x/mod/sumdb/tlog"
)

// AuditEntry is one record of the audit log: its index and its canonical
// bytes (see releases/auditlog), exactly as hashed into the Merkle tree.
type AuditEntry struct {
	Index  int64
	Record []byte
}

// Event is one recorded change, written in the same transaction as the
// change itself, and appended to the audit log with it.
type Event struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   access.Actor    `json:"actor"`
	Action  string          `json:"action"`
	Subject string          `json:"subject"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Record is the canonical audit log record of e at index i: what a store
// appends to the log with the event, and hashes into the Merkle tree.
func (e Event) Record(i int64) ([]byte, error) {
	return auditlog.Encode(auditlog.Record{
		Index:   i,
		Time:    e.Time,
		Actor:   auditlog.Actor{TokenID: e.Actor.TokenID, Name: e.Actor.Name, Issuer: e.Actor.Issuer, Subject: e.Actor.Subject},
		Action:  e.Action,
		Subject: e.Subject,
		Details: e.Details,
	})
}

// Change is the event a change of the domain records: what the domain
// decided inside a store's transaction, for the store to write with it.
// A Change without an Action changes nothing.
type Change struct {
	Action  string
	Details json.RawMessage
}

// Store is the read side of the tamper-evident log. The write side is
// part of every mutating method of every concept's store: each recorded
// event is also appended to the log, with its Merkle hashes, in the same
// transaction.
type Store interface {
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
	// Events returns recorded events with Seq > after, oldest first.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
}
