// Package sqlstore implements releases.Metadata over SQL: one adapter type
// per concept store (db.Tokens(), db.Catalog(), db.Releases(), …), all
// over one database, so that a change and its audit record share a
// transaction. No rule of the domain lives here, only storage.
//
// SQLite (modernc.org/sqlite, pure Go) is the embedded default; the code is
// written so that a PostgreSQL dialect can be added without touching
// callers: queries use standard SQL with "?" placeholders that a dialect
// rebinds, times are BIGINT Unix nanoseconds in UTC, lists are JSON text,
// and the schema comes from numbered migrations embedded per dialect.
//
// Every mutating method writes its change and exactly one audit.Event in
// one transaction, so the event stream is a complete record of what changed.
// The same transaction appends the event's audit record (releases/auditlog)
// and the Merkle hashes it completes, so the tamper-evident log holds every
// event, in order, with no gaps.
// Driver errors are translated here (errdef.ErrNotFound, ErrConflict,
// ErrVersionExists, ErrInvalidInput) and never leak to callers as
// sql.ErrNoRows or driver types.
//
// releases/metadatatest is the conformance suite this package passes.
package sqlstore
