// Package sqlstore implements releases.Metadata over SQL: one adapter type
// per concept store (db.Tokens(), db.Catalog(), db.Releases(), …), all
// over one database, so that a change and its audit record share a
// transaction.
//
// No rule of the domain lives here, only storage. Where a change is
// guarded by a rule — a version is immutable, an admission is stored only
// from the state it was decided in, evidence binds to the bytes it covers,
// an admitted tag never moves, a release keeps what it includes — the
// store opens the write transaction, loads the rows (locking them where
// the dialect has several writers), and calls the domain's function to
// decide and to name the event; it writes what that function returns, in
// the same transaction. A second dialect writes SQL, never a rule.
// Conditional writes that keep the storage itself sound (insert if
// absent; the release's revision check, a last line against a lost update
// on a dialect whose row lock failed) are storage, and stay.
//
// Two dialects share every query (dialect.go): SQLite (modernc.org/sqlite,
// pure Go), the embedded default, and PostgreSQL (pgx through
// database/sql), which any number of dml processes share. Queries use
// standard SQL with "?" placeholders that a dialect rebinds, times are
// BIGINT Unix nanoseconds in UTC, lists are JSON text, and the schema
// comes from numbered migrations embedded per dialect, the same versions
// meaning the same change in both. What differs is how writers are kept
// apart: SQLite admits one writer at a time; on PostgreSQL a transaction
// locks the rows it decides on, or an advisory lock keyed by what it
// decides on (a name, a claim, a blob, the next audit index), and one
// aborted by a deadlock is run again whole (DB.write).
//
// Every mutating method writes its change and exactly one audit.Event in
// one transaction, so the event stream is a complete record of what changed.
// The same transaction appends the event's audit record (releases/auditlog)
// and the Merkle hashes it completes, so the tamper-evident log holds every
// event, in order, with no gaps.
// Driver errors are translated here (errdef.ErrNotFound, ErrConflict,
// ErrInvalidInput; a database that cannot be reached is
// store.ErrUnavailable) and never leak to callers as sql.ErrNoRows or
// driver types.
//
// releases/metadatatest is the conformance suite this package passes.
package sqlstore
